"""Reading packages and transitions through the API: filters, keyset pages, one package, the command list."""
from datetime import datetime

import pytest
from sqlalchemy import select

from portal.accounts import auth
from portal.extensions import db
from portal.packages.models import Transition
from portal.packages.states import State


def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def numbers(response) -> list[str]:
    """Package numbers of a list response, in order."""
    return [p["number"] for p in response.json["results"]]


def test_a_package_in_the_list_has_every_documented_field(client, make):
    store = make.store("IST-KDK", "Kadikoy")
    package = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP, items=3)
    response = client.get("/api/v1/oms/packages/", headers=token_headers(make.user(role="admin")))
    assert response.status_code == 200
    assert response.json["next"] is None and response.json["previous"] is None
    [row] = response.json["results"]
    created = row.pop("created_at")
    updated = row.pop("updated_at")
    assert created.endswith("Z") and updated.endswith("Z")
    assert datetime.fromisoformat(created.replace("Z", "+00:00")) == package.created_at
    assert row == {
        "id": package.id, "number": package.number, "order_number": package.order_number,
        "status": {"code": 550, "value": "ready_for_customer_pickup", "label": "Ready for Customer Pickup"},
        "delivery_type": "in_store", "delivery_from_store": True,
        "stock_location": {"id": store.id, "erp_code": "IST-KDK", "name": "Kadikoy"},
        "customer": {"first_name": "Ada", "last_name": package.customer.last_name, "phone": "+905551112233"},
        "item_count": 3, "hold_until": None, "version": 1,
    }


def test_list_filters_by_status_delivery_type_store_and_search(client, make):
    kadikoy, besiktas = make.store(), make.store()
    waiting_cc = make.package(store=kadikoy)
    packed_cc = make.package(store=kadikoy, state=State.PACKED)
    waiting_cargo = make.package(store=besiktas, click_collect=False)
    headers = token_headers(make.user(role="brand_manager"))

    def listed(**args):
        """Numbers the list shows for these filters."""
        response = client.get("/api/v1/oms/packages/", headers=headers, query_string=args)
        assert response.status_code == 200
        return set(numbers(response))

    assert listed() == {waiting_cc.number, packed_cc.number, waiting_cargo.number}
    assert listed(status="100") == {waiting_cc.number, waiting_cargo.number}
    assert listed(status="packed") == {packed_cc.number}
    assert listed(delivery_type="cargo") == {waiting_cargo.number}
    assert listed(stock_location=kadikoy.id) == {waiting_cc.number, packed_cc.number}
    assert listed(stock_location=kadikoy.id, status="waiting", delivery_type="in_store") == {waiting_cc.number}
    assert listed(search=packed_cc.number.lower()) == {packed_cc.number}
    assert listed(search=waiting_cargo.order_number) == {waiting_cargo.number}
    assert listed(search="PK9999999") == set()


@pytest.mark.parametrize("args, field", [
    ({"status": "lost"}, "status"), ({"delivery_type": "drone"}, "delivery_type"),
    ({"stock_location": "abc"}, "stock_location"), ({"after": "x"}, "after"), ({"limit": "0"}, "limit"),
    ({"limit": "ten"}, "limit"),
])
def test_meaningless_filters_are_a_400(client, make, args, field):
    response = client.get("/api/v1/oms/packages/", headers=token_headers(make.user(role="admin")),
                          query_string=args)
    assert response.status_code == 400
    assert response.json["code"] == "validation_error"
    assert response.json["field"] == field


def test_keyset_pages_walk_forward_and_back_without_gaps_or_duplicates(client, make):
    store = make.store()
    packages = [make.package(store=store, state=State.WAITING if i % 3 else State.PACKED, items=1)
                for i in range(12)]
    make.package(store=make.store())  # another store: never listed for this staff member
    headers = token_headers(make.user(stores=[store]))
    newest_first = [p.number for p in reversed(packages)]

    pages, url = [], "/api/v1/oms/packages/?limit=5"
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        pages.append(response.json)
        url = response.json["next"]
    assert [len(page["results"]) for page in pages] == [5, 5, 2]
    walked = [p["number"] for page in pages for p in page["results"]]
    assert walked == newest_first
    assert pages[0]["previous"] is None
    assert "limit=5" in pages[0]["next"] and pages[0]["next"].startswith("http://")

    back = client.get(pages[2]["previous"], headers=headers)
    assert numbers(back) == newest_first[5:10]
    back_again = client.get(back.json["previous"], headers=headers)
    assert numbers(back_again) == newest_first[:5]
    assert back_again.json["previous"] is None

    waiting = [p.number for p in reversed(packages) if p.state == State.WAITING]
    first = client.get("/api/v1/oms/packages/?status=waiting&limit=3", headers=headers)
    second = client.get(first.json["next"], headers=headers)
    assert "status=100" in first.json["next"]
    assert numbers(first) + numbers(second) == waiting[:6]


def test_limit_is_capped_at_one_hundred(client, make):
    store = make.store()
    for _ in range(101):
        make.package(store=store, items=0)
    response = client.get("/api/v1/oms/packages/?limit=500", headers=token_headers(make.user(role="admin")))
    assert len(response.json["results"]) == 100
    assert "limit=100" in response.json["next"]


def test_staff_list_holds_only_their_stores(client, make):
    mine, theirs = make.store(), make.store()
    own = make.package(store=mine)
    make.package(store=theirs)
    headers = token_headers(make.user(stores=[mine]))
    assert numbers(client.get("/api/v1/oms/packages/", headers=headers)) == [own.number]
    other_store = client.get("/api/v1/oms/packages/", headers=headers, query_string={"stock_location": theirs.id})
    assert other_store.json["results"] == []


def test_one_package_with_items_and_the_commands_it_offers(client, make):
    store = make.store()
    package = make.package(store=store, state=State.PACKED, items=2)
    response = client.get(f"/api/v1/oms/packages/{package.id}/", headers=token_headers(make.user(stores=[store])))
    assert response.status_code == 200
    body = response.json
    assert body["status"]["code"] == 500
    assert body["items"] == [
        {"order_item": i.order_item, "sku": i.sku, "name": i.name, "barcode": i.barcode, "quantity": 1}
        for i in package.items]
    slugs = {t["slug"] for t in body["transitions"]}
    # Click & collect packages are not shipped, so Ship The Package is not offered.
    assert slugs == {"ready-for-customer-pickup", "block-the-package-for-action-from-packed"}
    ready = next(t for t in body["transitions"] if t["slug"] == "ready-for-customer-pickup")
    assert ready["id"] == db.session.scalar(select(Transition.id).where(Transition.slug == "ready-for-customer-pickup"))
    assert ready["destination_state"]["code"] == State.READY_FOR_CUSTOMER_PICKUP


def test_another_stores_package_is_a_404_for_staff_but_not_for_admins(client, make):
    mine, theirs = make.store(), make.store()
    package = make.package(store=theirs)
    staff = client.get(f"/api/v1/oms/packages/{package.id}/", headers=token_headers(make.user(stores=[mine])))
    assert staff.status_code == 404
    assert staff.json == {"detail": "Package not found.", "code": "not_found"}
    admin = client.get(f"/api/v1/oms/packages/{package.id}/", headers=token_headers(make.user(role="admin")))
    assert admin.status_code == 200


def test_transitions_list_the_vendor_flow(client, make):
    response = client.get("/api/v1/oms/transitions/", headers=token_headers(make.user()))
    assert response.status_code == 200
    rows = {t["slug"]: t for t in response.json}
    assert len(rows) == db.session.query(Transition).count()
    delivery = rows["self-service-package-delivery"]
    assert delivery == {
        "id": delivery["id"], "slug": "self-service-package-delivery", "name": "Self Service Package Delivery",
        "command_code": "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND",
        "source_state": {"code": 550, "value": "ready_for_customer_pickup", "label": "Ready for Customer Pickup"},
        "destination_state": {"code": 800, "value": "delivered", "label": "Delivered"},
        "visibility": ["OMS_WEB", "INSTORE"], "configuration": {}, "is_active": True,
    }
    assert rows["unblock-the-package-for-action"]["destination_state"] is None
    assert rows["update-shipment-status-shipped"]["visibility"] == ["OMS_WEB"]
