"""The Omnitron sandbox itself, over real HTTP: auth, pagination, realistic data, changes and faults."""
from __future__ import annotations

import pytest
import requests
from stubs.omnitron_server import (  # noqa: F401
    LIMITED_PASSWORD,
    LIMITED_USERNAME,
    PASSWORD,
    USERNAME,
    SandboxServer,
    omnitron_sandbox,
    omnitron_sandbox_factory,
)


def _token(sandbox, username: str = USERNAME, password: str = PASSWORD) -> str:
    """Log in over HTTP and return the token."""
    response = requests.post(f"{sandbox.url}/api/v1/auth/login/", json={"username": username, "password": password},
                             timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["key"]


def _get(sandbox, path: str, token: str | None = None, **params) -> requests.Response:
    """GET a sandbox path, with a token when given."""
    headers = {"Authorization": f"Token {token}"} if token else {}
    return requests.get(f"{sandbox.url}{path}", params=params, headers=headers, timeout=5)


def _all(sandbox, path: str, token: str, **params) -> list[dict]:
    """Every record of a list, following the `next` links the way a DRF client does."""
    records, url = [], f"{sandbox.url}{path}"
    query = {"limit": 1000, **params}
    while url:
        body = requests.get(url, params=query, headers={"Authorization": f"Token {token}"}, timeout=5).json()
        records += body["results"]
        url, query = body["next"], None
    return records


def test_login_gives_a_token_that_opens_the_api(omnitron_sandbox):
    """The configured user logs in; the same token comes back on a second login, as in DRF."""
    token = _token(omnitron_sandbox)

    assert _token(omnitron_sandbox) == token
    assert _get(omnitron_sandbox, "/api/v1/channels/", token).status_code == 200


def test_bad_credentials_and_missing_fields_answer_400(omnitron_sandbox):
    """Wrong password and missing fields are refused like DRF's obtain_auth_token refuses them."""
    wrong = requests.post(f"{omnitron_sandbox.url}/api/v1/auth/login/",
                          json={"username": USERNAME, "password": "nope"}, timeout=5)
    missing = requests.post(f"{omnitron_sandbox.url}/api/v1/auth/login/", json={"username": USERNAME}, timeout=5)

    assert wrong.status_code == 400
    assert wrong.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
    assert missing.status_code == 400 and missing.json() == {"password": ["This field is required."]}


def test_api_needs_a_valid_token_and_permission(omnitron_sandbox):
    """No token or a wrong one: 401 with WWW-Authenticate; the limited user: 403; health needs nothing."""
    limited = _token(omnitron_sandbox, LIMITED_USERNAME, LIMITED_PASSWORD)

    none = _get(omnitron_sandbox, "/api/v1/districts/")
    wrong = _get(omnitron_sandbox, "/api/v1/districts/", "not-a-token")
    forbidden = _get(omnitron_sandbox, "/api/v1/districts/", limited)
    health = _get(omnitron_sandbox, "/api/v1/health/")

    assert (none.status_code, wrong.status_code, forbidden.status_code) == (401, 401, 403)
    assert none.headers["WWW-Authenticate"] == "Token" and wrong.json() == {"detail": "Invalid token."}
    assert forbidden.json()["detail"] == "You do not have permission to perform this action."
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_unknown_ids_resources_and_pages_answer_404(omnitron_sandbox):
    """404 for a missing record, an unknown resource and a page past the end."""
    token = _token(omnitron_sandbox)

    assert _get(omnitron_sandbox, "/api/v1/districts/3001/", token).status_code == 404
    assert _get(omnitron_sandbox, "/api/v1/districts/3000/", token).json()["id"] == 3000
    assert _get(omnitron_sandbox, "/api/v1/warehouses/", token).status_code == 404
    past = _get(omnitron_sandbox, "/api/v1/districts/", token, page=4, limit=1000)
    assert past.status_code == 404 and past.json() == {"detail": "Invalid page."}


def test_pages_follow_the_drf_shape_and_cap_the_limit(omnitron_sandbox):
    """count/next/previous/results, links that keep the other parameters, at most 1000 a page."""
    token = _token(omnitron_sandbox)

    first = _get(omnitron_sandbox, "/api/v1/districts/", token, limit=5000).json()
    second = _get(omnitron_sandbox, "/api/v1/districts/", token, page=2, limit=1000).json()
    default = _get(omnitron_sandbox, "/api/v1/districts/", token).json()

    assert first["count"] == 3000 and len(first["results"]) == 1000 and first["previous"] is None
    assert first["next"] == f"{omnitron_sandbox.url}/api/v1/districts/?limit=5000&page=2"
    assert second["previous"] == f"{omnitron_sandbox.url}/api/v1/districts/?limit=1000"
    assert [r["id"] for r in second["results"]] == list(range(1001, 2001))
    assert len(default["results"]) == 50


def test_the_address_tree_is_turkish_and_consistent(omnitron_sandbox):
    """One country, 81 provinces, their townships, and districts that all point at real parents."""
    token = _token(omnitron_sandbox)
    countries = _all(omnitron_sandbox, "/api/v1/countries/", token)
    cities = {c["id"]: c for c in _all(omnitron_sandbox, "/api/v1/cities/", token)}
    townships = {t["id"]: t for t in _all(omnitron_sandbox, "/api/v1/townships/", token)}
    districts = _all(omnitron_sandbox, "/api/v1/districts/", token)

    assert [c["name"] for c in countries] == ["Türkiye"]
    assert len(cities) == 81 and cities[34]["name"] == "İstanbul" and cities[34]["code"] == "34"
    assert {"Kadıköy", "Beşiktaş", "Üsküdar"} <= {t["name"] for t in townships.values() if t["city"] == 34}
    assert len(districts) == 3000
    assert all(d["township"] in townships and townships[d["township"]]["city"] == d["city"] for d in districts)
    assert all(d["parent"] == d["township"] and d["name"].endswith(" Mahallesi") for d in districts)
    assert len({d["code"] for d in districts}) == 3000
    assert len({(d["township"], d["name"]) for d in districts}) == 3000
    assert 0 < sum(not d["is_active"] for d in districts) < 200
    keys = {"id", "name", "code", "parent", "is_active", "modified_date"}
    assert all(keys <= set(r) for r in [*countries, *cities.values(), *townships.values(), *districts])


def test_stock_locations_and_channels_look_real(omnitron_sandbox):
    """About 100 stores and warehouses with unique ERP codes and coordinates inside Turkey; several channels."""
    token = _token(omnitron_sandbox)
    locations = _all(omnitron_sandbox, "/api/v1/stock_locations/", token)
    channels = _all(omnitron_sandbox, "/api/v1/channels/", token)

    assert len(locations) == 100 and len({s["erp_code"] for s in locations}) == 100
    assert {s["stock_location_type"] for s in locations} == {"store", "warehouse"}
    assert all(35.8 < float(s["latitude"]) < 42.2 and 25.6 < float(s["longitude"]) < 44.9 for s in locations)
    kadikoy = locations[0]
    assert (kadikoy["erp_code"], kadikoy["city"], kadikoy["latitude"]) == ("IST-KDK", "İstanbul", "40.990200")
    assert {"web", "mobile_app", "marketplace"} <= {c["channel_type"] for c in channels}
    assert all({"id", "name", "channel_type", "is_active", "modified_date"} <= set(c) for c in channels)


def test_the_same_seed_gives_the_same_data_and_another_seed_differs(omnitron_sandbox_factory):
    """Data is generated from the seed: stable between runs, different for another seed."""
    one, again, other = (omnitron_sandbox_factory({"SANDBOX_SEED": seed}) for seed in (7, 7, 8))

    pages = [_get(s, "/api/v1/districts/", _token(s), limit=1000).json()["results"] for s in (one, again, other)]
    stores = [_get(s, "/api/v1/stock_locations/100/", _token(s)).json() for s in (one, again, other)]

    assert pages[0] == pages[1] and stores[0] == stores[1]
    assert [d["is_active"] for d in pages[0]] != [d["is_active"] for d in pages[2]]
    assert stores[0]["latitude"] != stores[2]["latitude"]


def test_mutate_changes_records_with_newer_dates_that_the_filter_finds(omnitron_sandbox):
    """Three districts change and two are added; modified_date__gt finds exactly those five; reset undoes it."""
    token = _token(omnitron_sandbox)
    before = {d["id"]: d for d in _all(omnitron_sandbox, "/api/v1/districts/", token)}
    newest = max(d["modified_date"] for d in before.values())
    assert _get(omnitron_sandbox, "/api/v1/districts/", token, modified_date__gt=newest).json()["count"] == 0

    result = omnitron_sandbox.mutate("districts", update=3, add=2)

    after = {d["id"]: d for d in _all(omnitron_sandbox, "/api/v1/districts/", token)}
    changed = _all(omnitron_sandbox, "/api/v1/districts/", token, modified_date__gt=newest)
    assert len(result["updated_ids"]) == 3 and result["added_ids"] == [3001, 3002] and len(after) == 3002
    assert [d["id"] for d in changed] == sorted(result["updated_ids"] + result["added_ids"])
    for district_id in result["updated_ids"]:
        assert after[district_id]["is_active"] != before[district_id]["is_active"]
        assert after[district_id]["modified_date"] > newest
    unchanged = [i for i in before if i not in result["updated_ids"]]
    assert all(after[i] == before[i] for i in unchanged)
    assert after[3001]["name"].endswith("Mahallesi") and after[3001]["township"] >= 1

    requests.post(f"{omnitron_sandbox.url}/__sandbox__/reset", timeout=5).raise_for_status()
    token = _token(omnitron_sandbox)
    assert {d["id"]: d for d in _all(omnitron_sandbox, "/api/v1/districts/", token)} == before


def test_mutate_with_explicit_changes_and_bad_requests(omnitron_sandbox):
    """A store renamed by id; unknown resources, ids out of range and adding cities are refused."""
    token = _token(omnitron_sandbox)
    omnitron_sandbox.mutate("stock_locations", ids=[2], changes={"name": "Beşiktaş Çarşı Store"})

    assert _get(omnitron_sandbox, "/api/v1/stock_locations/2/", token).json()["name"] == "Beşiktaş Çarşı Store"
    for body in ({"resource": "planets"}, {"resource": "channels", "ids": [99]}, {"resource": "cities", "add": 1},
                 {"resource": "channels", "ids": [1], "changes": {"id": 5}}):
        response = requests.post(f"{omnitron_sandbox.url}/__sandbox__/mutate", json=body, timeout=5)
        assert response.status_code == 400, body


def test_faults_fire_the_given_number_of_times_and_are_validated(omnitron_sandbox):
    """A 500 on page 2 only, twice; then the page answers; nonsense faults are refused with a reason."""
    token = _token(omnitron_sandbox)
    omnitron_sandbox.add_fault("/api/v1/districts/", page=2, status=500, times=2)

    statuses = [_get(omnitron_sandbox, "/api/v1/districts/", token, page=p).status_code for p in (1, 2, 2, 2)]

    assert statuses == [200, 500, 500, 200]
    assert omnitron_sandbox.faults()[0]["hits"] == 2
    bad = requests.post(f"{omnitron_sandbox.url}/__sandbox__/faults", json={"path": "/api/v1/districts/"}, timeout=5)
    assert bad.status_code == 400 and "status" in bad.json()["detail"]


def test_control_endpoints_can_require_an_admin_token(omnitron_sandbox_factory):
    """With SANDBOX_ADMIN_TOKEN set, /__sandbox__/ needs the X-Sandbox-Admin header."""
    sandbox = omnitron_sandbox_factory({"SANDBOX_ADMIN_TOKEN": "let-me-in"})
    url = f"{sandbox.url}/__sandbox__/faults"

    assert requests.get(url, timeout=5).status_code == 403
    assert requests.get(url, headers={"X-Sandbox-Admin": "let-me-in"}, timeout=5).status_code == 200


def test_faults_can_be_configured_at_start():
    """SANDBOX_FAULTS arms faults before the first request (for runs without the control endpoint)."""
    with SandboxServer({"SANDBOX_FAULTS": [{"path": "/api/v1/health/", "status": 503, "times": None}]}) as sandbox:
        assert _get(sandbox, "/api/v1/health/").status_code == 503
    with pytest.raises(ValueError, match="status"):
        SandboxServer({"SANDBOX_FAULTS": [{"path": "/api/v1/health/", "status": 200}]})


def test_stock_engines_and_their_fake_stock_services(omnitron_sandbox):
    """Step 10: the engine list needs a token; a credentialed engine's stock service needs basic auth."""
    token = _token(omnitron_sandbox)
    path = "/api/v1/oms/setup/product-stock-integration/available-stock-engines/"

    engines = _get(omnitron_sandbox, path, token).json()
    open_engine = requests.get(f"{omnitron_sandbox.url}/stock-engines/omnitron/stocks/", params={"sku": "SKU-1"},
                               timeout=5)
    locked = requests.get(f"{omnitron_sandbox.url}/stock-engines/erp_rest/", timeout=5)
    wrong = requests.get(f"{omnitron_sandbox.url}/stock-engines/erp_rest/", auth=("stock.user", "nope"), timeout=5)
    right = requests.get(f"{omnitron_sandbox.url}/stock-engines/erp_rest/", auth=("stock.user", "stock-password"),
                         timeout=5)

    assert _get(omnitron_sandbox, path).status_code == 401
    assert {e["stock_engine_type"]: e["requires_credentials"] for e in engines}["erp_rest"] is True
    assert open_engine.status_code == 200 and open_engine.json()["results"][0]["sku"] == "SKU-1"
    assert (locked.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert locked.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(f"{omnitron_sandbox.url}/stock-engines/nope/", timeout=5).status_code == 404
