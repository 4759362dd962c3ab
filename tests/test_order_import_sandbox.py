"""The sandbox's orders over real HTTP: realistic records, the filters ORDER_FILTERING needs, and added orders."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import requests
from stubs.omnitron_server import PASSWORD, USERNAME, omnitron_sandbox, omnitron_sandbox_factory  # noqa: F401

from portal.settings.service import ORDER_STATUSES
from sandbox.places import PROVINCES


def _token(sandbox) -> str:
    """Log in over HTTP and return the token."""
    return requests.post(f"{sandbox.url}/api/v1/auth/login/", json={"username": USERNAME, "password": PASSWORD},
                         timeout=5).json()["key"]


def _orders(sandbox, token: str, **params) -> dict:
    """One page of the order list."""
    response = requests.get(f"{sandbox.url}/api/v1/orders/", params=params,
                            headers={"Authorization": f"Token {token}"}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _ean13_ok(code: str) -> bool:
    """Whether an EAN-13's check digit is right."""
    digits = [int(c) for c in code]
    return len(digits) == 13 and (sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12])) + digits[12]) % 10 == 0


def test_orders_look_like_omnitron_orders_with_real_places(omnitron_sandbox):
    token = _token(omnitron_sandbox)
    everything = _orders(omnitron_sandbox, token, limit=1000)
    orders = everything["results"]
    assert everything["count"] == len(orders) == 300
    townships = {(c + 1, t) for c, (_, _, names) in enumerate(PROVINCES) for t in names}
    locations = requests.get(f"{omnitron_sandbox.url}/api/v1/stock_locations/", params={"limit": 1000},
                             headers={"Authorization": f"Token {token}"}, timeout=5).json()["results"]
    stores = {s["erp_code"]: s["city_id"] for s in locations if s["stock_location_type"] == "store"}
    assert {o["status"] for o in orders} == set(ORDER_STATUSES)
    assert {o["channel"] for o in orders} == set(range(1, 9))
    assert {o["delivery_type"] for o in orders} == {"cargo", "in_store"}
    for order in orders:
        address = order["shipping_address"]
        assert (address["city"]["id"], address["township"]["name"]) in townships
        assert order["created_date"] <= order["modified_date"] < "2025-01-01"
        assert order["customer"]["phone_number"].startswith("+90 5") and "@" in order["customer"]["email"]
        assert order["orderitem_set"] and all(_ean13_ok(i["product"]["barcode"]) and i["quantity"] >= 1
                                              for i in order["orderitem_set"])
        if order["delivery_type"] == "in_store":
            # Collected at a store of the customer's own city.
            assert stores[order["pickup_store"]["erp_code"]] == address["city"]["id"]
        else:
            assert order["pickup_store"] is None
    with_coordinates = [o for o in orders if o["shipping_address"]["latitude"]]
    assert 0 < len(with_coordinates) < len(orders)
    assert sum(o["is_test"] for o in orders) > 0
    # One order by id answers the same record.
    first = orders[0]
    detail = requests.get(f"{omnitron_sandbox.url}/api/v1/orders/{first['id']}/",
                          headers={"Authorization": f"Token {token}"}, timeout=5).json()
    assert detail == first


def test_the_filters_choose_statuses_channels_dates_and_test_orders(omnitron_sandbox):
    token = _token(omnitron_sandbox)
    everything = _orders(omnitron_sandbox, token, limit=1000)["results"]

    chosen = _orders(omnitron_sandbox, token, limit=1000, status=["approved", "preparing,shipped"], channel="1,3",
                     is_test="false", created_date__gte="2024-11-01T00:00:00Z", created_date__lt="2024-12-01")

    expected = [o["id"] for o in everything if o["status"] in ("approved", "preparing", "shipped")
                and o["channel"] in (1, 3) and not o["is_test"] and "2024-11-01" <= o["created_date"] < "2024-12-01"]
    assert [o["id"] for o in chosen["results"]] == expected and chosen["count"] == len(expected) > 5
    middle = sorted(o["modified_date"] for o in everything)[150]
    newer = _orders(omnitron_sandbox, token, limit=1000, modified_date__gte=middle)
    assert newer["count"] == sum(1 for o in everything if o["modified_date"] >= middle)
    strictly = _orders(omnitron_sandbox, token, limit=1000, modified_date__gt=middle)
    assert strictly["count"] == newer["count"] - 1


def test_ordering_by_modified_date_pages_without_overlap_and_links_keep_the_filters(omnitron_sandbox):
    token = _token(omnitron_sandbox)
    page = _orders(omnitron_sandbox, token, limit=40, status=["approved", "waiting"], ordering="modified_date")
    seen, dates = [], []
    while True:
        seen += [o["id"] for o in page["results"]]
        dates += [o["modified_date"] for o in page["results"]]
        if not page["next"]:
            break
        query = parse_qs(urlparse(page["next"]).query)
        assert query["status"] == ["approved", "waiting"] and query["ordering"] == ["modified_date"]
        page = requests.get(page["next"], headers={"Authorization": f"Token {token}"}, timeout=5).json()
    assert len(seen) == len(set(seen)) == page["count"]
    assert dates == sorted(dates)
    newest_first = _orders(omnitron_sandbox, token, limit=5, ordering="-modified_date")["results"]
    assert newest_first[0]["modified_date"] == max(dates + [newest_first[0]["modified_date"]])


def test_bad_filters_answer_400_with_the_field(omnitron_sandbox):
    token = _token(omnitron_sandbox)
    for params, field in (({"channel": "web"}, "channel"), ({"ordering": "price"}, "ordering"),
                          ({"created_date__gte": "yesterday"}, "created_date__gte"), ({"is_test": "maybe"}, "is_test")):
        response = requests.get(f"{omnitron_sandbox.url}/api/v1/orders/", params=params,
                                headers={"Authorization": f"Token {token}"}, timeout=5)
        assert response.status_code == 400 and field in response.json(), params
    assert requests.get(f"{omnitron_sandbox.url}/api/v1/orders/", timeout=5).status_code == 401


def test_mutate_adds_new_orders_and_changes_existing_ones(omnitron_sandbox):
    token = _token(omnitron_sandbox)
    result = omnitron_sandbox.mutate("orders", add=3)
    assert result["added_ids"] == [301, 302, 303] and result["count"] == 303
    omnitron_sandbox.mutate("orders", ids=[7], changes={"status": "cancelled"})
    omnitron_sandbox.mutate("orders", ids=[8])  # touched: only its modified_date moves

    recent = _orders(omnitron_sandbox, token, modified_date__gte="2025-01-01T00:00:00Z", ordering="modified_date")
    assert [o["id"] for o in recent["results"]] == [301, 302, 303, 7, 8]
    added = recent["results"][0]
    assert added["created_date"] == added["modified_date"] and added["orderitem_set"]
    assert recent["results"][3]["status"] == "cancelled"
    requests.post(f"{omnitron_sandbox.url}/__sandbox__/reset", timeout=5)
    assert _orders(omnitron_sandbox, _token(omnitron_sandbox))["count"] == 300


def test_the_order_count_and_seed_are_settings(omnitron_sandbox_factory):
    small = omnitron_sandbox_factory({"SANDBOX_ORDER_COUNT": 12})
    again = omnitron_sandbox_factory({"SANDBOX_ORDER_COUNT": 12})
    other = omnitron_sandbox_factory({"SANDBOX_ORDER_COUNT": 12, "SANDBOX_SEED": 7})
    pages = [_orders(s, _token(s), limit=100) for s in (small, again, other)]
    assert pages[0]["count"] == 12
    assert pages[0]["results"] == pages[1]["results"] != pages[2]["results"]
