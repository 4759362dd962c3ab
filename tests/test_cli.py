"""The flask commands an operator runs: create-user, create-api-token and seed-demo."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from portal.accounts import auth
from portal.accounts.models import ApiToken, User
from portal.extensions import db
from portal.packages.models import Package, PackageItem, PackageLog
from portal.packages.states import DeliveryType, State
from portal.stores.models import StockLocation


def user(username: str) -> User | None:
    """The user as the database has it now."""
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.username == username))


def count(model) -> int:
    """Rows of a model."""
    return db.session.scalar(select(func.count()).select_from(model))


def test_create_user_makes_a_staff_member_of_a_store(runner, make):
    store = make.store("IST-KDK")

    result = runner.invoke(args=["create-user", "zeynep", "--role", "staff", "--store", "IST-KDK",
                                 "--password", "a-long-password"])

    assert result.exit_code == 0, result.output
    assert "Created staff zeynep." in result.output
    created = user("zeynep")
    assert created.role == "staff" and created.store_ids == [store.id]
    assert created.password_hash.startswith("$argon2id$")
    assert auth.authenticate(db.session, "zeynep", "a-long-password").id == created.id


def test_create_user_asks_for_the_password_twice_when_not_given(runner):
    result = runner.invoke(args=["create-user", "boss", "--role", "admin"], input="a-long-password\na-long-password\n")

    assert result.exit_code == 0, result.output
    assert user("boss").role == "admin" and user("boss").stock_locations == []


def test_create_user_for_staff_without_a_store_is_refused(runner):
    result = runner.invoke(args=["create-user", "zeynep", "--role", "staff", "--password", "a-long-password"])

    assert result.exit_code != 0
    assert "--store" in result.output
    assert user("zeynep") is None


def test_create_user_with_an_unknown_store_is_refused(runner, make):
    make.store("IST-KDK")

    result = runner.invoke(args=["create-user", "zeynep", "--role", "staff", "--store", "NOPE",
                                 "--password", "a-long-password"])

    assert result.exit_code != 0
    assert "No store with ERP code 'NOPE'" in result.output
    assert user("zeynep") is None


def test_create_user_refuses_an_unknown_role_a_short_password_and_a_taken_name(runner, make):
    make.user("taken", role="admin")

    bad_role = runner.invoke(args=["create-user", "x", "--role", "king", "--password", "a-long-password"])
    short = runner.invoke(args=["create-user", "x", "--role", "admin", "--password", "short"])
    taken = runner.invoke(args=["create-user", "taken", "--role", "admin", "--password", "a-long-password"])

    assert bad_role.exit_code != 0 and "king" in bad_role.output
    assert short.exit_code != 0 and "at least 8 characters" in short.output
    assert taken.exit_code != 0 and "already exists" in taken.output
    assert count(User) == 1


def test_create_api_token_prints_a_key_that_authenticates(runner, make):
    owner = make.user("integrator", role="brand_manager")

    result = runner.invoke(args=["create-api-token", "integrator"])

    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert len(key) >= 40
    assert auth.user_for_token(db.session, key).id == owner.id
    [token] = db.session.scalars(select(ApiToken))
    assert token.key_digest != key and key not in token.key_digest
    assert auth.user_for_token(db.session, key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def test_create_api_token_for_an_unknown_user_is_an_error(runner):
    result = runner.invoke(args=["create-api-token", "ghost"])

    assert result.exit_code != 0
    assert "No user 'ghost'" in result.output
    assert count(ApiToken) == 0


def test_seed_demo_fills_the_portal_once(runner):
    result = runner.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    for login in ("admin", "admin-demo-1", "kadikoy", "kadikoy-demo-1", "besiktas"):
        assert login in result.output

    db.session.expire_all()
    assert count(StockLocation) >= 3
    staff = list(db.session.scalars(select(User).where(User.role == "staff")))
    assert len({store.id for u in staff for store in u.stock_locations}) >= 2
    assert {u.role for u in db.session.scalars(select(User))} >= {"admin", "brand_manager", "staff"}

    packages = list(db.session.scalars(select(Package)))
    assert 180 <= len(packages) <= 220
    kinds = Counter((p.delivery_type, p.delivery_from_store) for p in packages)
    assert kinds[(DeliveryType.IN_STORE, True)] >= 40 and kinds[(DeliveryType.CARGO, False)] >= 40
    states = Counter(p.state for p in packages)
    for state in (State.WAITING, State.PACKED, State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED):
        assert states[state] >= 3, state
    assert len({p.stock_location_id for p in packages}) >= 2
    for package in packages:
        assert package.items and all(item.barcode for item in package.items)
        assert package.item_count == len(package.items)
        assert package.customer.phone
    assert all(p.is_click_and_collect for p in packages if p.state == State.READY_FOR_CUSTOMER_PICKUP)
    # States reached by commands have their audit rows.
    assert count(PackageLog) >= states[State.PACKED] + 2 * states[State.READY_FOR_CUSTOMER_PICKUP]

    before = (count(StockLocation), count(User), count(Package), count(PackageItem), count(PackageLog))
    again = runner.invoke(args=["seed-demo"])

    assert again.exit_code == 0, again.output
    db.session.expire_all()
    assert (count(StockLocation), count(User), count(Package), count(PackageItem), count(PackageLog)) == before
    assert auth.authenticate(db.session, "kadikoy", "kadikoy-demo-1").username == "kadikoy"
