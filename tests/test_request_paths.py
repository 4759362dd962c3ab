"""The fast paths of a request and a command: the token owner read in one query, transitions by slug cached per
process (and forgotten when one changes), the package lock, the rate limiter's Redis storage."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from portal.accounts import auth
from portal.accounts.models import ApiToken
from portal.db_types import utcnow
from portal.errors import ConcurrentChange, NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import commands, shelf
from portal.packages.locks import lock_package
from portal.packages.models import Package, PackageLog, Transition
from portal.packages.states import State

SLUG = "deallocate-package-reservations"


def run(package, slug=SLUG):
    """Run a command by slug as the system on every store."""
    return commands.run_command(db.session, package.id, slug=slug, params={}, user_id=None, store_ids=None)


def count_statements():
    """A list that collects the SQL statements the engine runs from now on (and the listener to remove)."""
    seen: list[str] = []

    def collect(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", collect)
    return seen, collect


def test_a_cached_transition_switched_off_is_refused_at_once(make):
    first, second = make.package(state=State.WAITING), make.package(state=State.WAITING)
    run(first)  # the transition is cached now
    transition = db.session.scalar(select(Transition).where(Transition.slug == SLUG))
    transition.is_active = False
    db.session.commit()

    with pytest.raises(ValidationFailed):
        run(second)
    db.session.expire_all()
    assert db.session.get(Package, second.id).state == State.WAITING


def test_the_transition_is_read_once_then_from_the_cache(make):
    first, second = make.package(state=State.WAITING), make.package(state=State.WAITING)
    run(first)
    seen, collect = count_statements()
    try:
        run(second)
    finally:
        event.remove(db.engine, "before_cursor_execute", collect)
    assert not [s for s in seen if "FROM transitions" in s]
    db.session.expire_all()
    assert db.session.get(Package, second.id).state == State.PREPARING


def test_a_change_made_elsewhere_is_seen_once_the_cache_lifetime_is_over(make, monkeypatch):
    first, second = make.package(state=State.WAITING), make.package(state=State.WAITING)
    run(first)
    # As another process would: a plain UPDATE, which this process's session never sees being flushed.
    db.session.execute(update(Transition).where(Transition.slug == SLUG).values(is_active=False))
    db.session.commit()
    monkeypatch.setattr(commands, "TRANSITION_CACHE_SECONDS", 0.0)

    with pytest.raises(ValidationFailed):
        run(second)


def test_a_staff_token_owner_comes_with_the_staff_stores_and_an_admin_with_none(make):
    store, other = make.store(), make.store()
    staff = make.user(role="staff", stores=[store, other])
    admin = make.user(role="admin")
    staff_key, admin_key = auth.create_api_token(db.session, staff), auth.create_api_token(db.session, admin)

    owner = auth.token_owner(db.session, staff_key)
    assert (owner.user_id, owner.role, sorted(owner.store_ids), owner.visibility) == (
        staff.id, "staff", sorted([store.id, other.id]), "INSTORE")
    admin_owner = auth.token_owner(db.session, admin_key)
    assert (admin_owner.store_ids, admin_owner.visibility) == (None, "OMS_WEB")
    assert auth.token_owner(db.session, staff_key + "x") is None


def test_a_token_records_its_use_at_most_once_a_minute(make):
    user = make.user(role="admin")
    key = auth.create_api_token(db.session, user)
    assert auth.token_owner(db.session, key) is not None
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    first_use = token.last_used_at
    assert first_use is not None

    assert auth.token_owner(db.session, key) is not None
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at == first_use

    db.session.execute(update(ApiToken).where(ApiToken.id == token.id)
                       .values(last_used_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    assert auth.token_owner(db.session, key) is not None
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at > first_use - timedelta(seconds=1)


def test_a_revoked_token_has_no_owner(make):
    user = make.user(role="admin")
    key = auth.create_api_token(db.session, user)
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    auth.revoke_api_token(db.session, user, token.id)
    assert auth.token_owner(db.session, key) is None
    assert auth.user_for_token(db.session, key) is None


def test_the_package_lock_loads_the_package_with_store_and_customer_in_one_statement(make):
    store, other = make.store(), make.store()
    package_id, store_id, store_name = make.package(store=store).id, store.id, store.name
    db.session.expire_all()
    seen, collect = count_statements()
    try:
        locked = lock_package(db.session, package_id, [store_id])
        names = (locked.stock_location.name, locked.customer.first_name)
    finally:
        event.remove(db.engine, "before_cursor_execute", collect)
    assert names == (store_name, "Ada")
    # PostgreSQL: SELECT ... FOR NO KEY UPDATE; SQLite: the no-op UPDATE that takes the write lock, then the read.
    seen = [s for s in seen if "packages" in s]
    assert len(seen) == (1 if db.engine.dialect.name == "postgresql" else 2), seen
    if db.engine.dialect.name == "postgresql":
        assert "FOR NO KEY UPDATE OF packages" in seen[0]
    db.session.rollback()
    with pytest.raises(NotFound):
        lock_package(db.session, package_id, [other.id])
    db.session.rollback()



def test_the_limiter_storage_reads_count_and_expiry_with_the_hit(redis_url, monkeypatch):
    from limits.storage import storage_from_string

    from portal.ratelimit import PipelinedRedisStorage

    storage = storage_from_string(redis_url)
    assert isinstance(storage, PipelinedRedisStorage)
    assert storage.incr("k", 60) == 1
    assert storage.incr("k", 60) == 2

    def no_round_trip(*args, **kwargs):
        raise AssertionError("went to Redis again")

    connection = storage.get_connection(True)
    monkeypatch.setattr(connection, "ttl", no_round_trip)
    monkeypatch.setattr(connection, "get", no_round_trip)
    monkeypatch.setattr(connection, "pipeline", no_round_trip)
    assert storage.get("k") == 2
    assert time.time() + 55 < storage.get_expiry("k") <= time.time() + 61
    monkeypatch.undo()
    # Each remembered figure is handed out once: later reads ask Redis (another worker may have counted since).
    storage.get_connection().incrby(storage.prefixed_key("k"), 5)
    assert storage.get("k") == 7
    assert time.time() + 55 < storage.get_expiry("k") <= time.time() + 61
    assert storage.get("missing") == 0
    assert storage.get_expiry("missing") <= time.time() + 1


def test_a_command_moves_the_package_and_writes_its_audit_row_in_one_statement_on_postgresql(make):
    package = make.package(state=State.WAITING)
    run(package)  # the transition is cached now
    other = make.package(state=State.WAITING)
    seen, collect = count_statements()
    try:
        run(other)
    finally:
        event.remove(db.engine, "before_cursor_execute", collect)
    # (SQLite's lock is a no-op UPDATE of the version alone, not counted here.)
    writes = [s for s in seen if "UPDATE packages SET state" in s or "INSERT INTO package_logs" in s]
    if db.engine.dialect.name == "postgresql":
        assert len(writes) == 1 and "UPDATE packages SET state" in writes[0] and "INSERT INTO package_logs" in writes[0], writes
    else:
        assert len(writes) == 2, writes
    [log] = db.session.scalars(select(PackageLog).where(PackageLog.package_id == other.id))
    assert (log.from_state, log.to_state, log.command) == (State.WAITING, State.PREPARING, SLUG)
    assert db.session.get(Package, other.id).version == 2


def test_a_package_changed_after_it_was_read_is_not_moved_and_gets_no_audit_row(make):
    package = make.package(state=State.WAITING)
    locked, transition, _impl = commands.checked_command(db.session, package.id, slug=SLUG, store_ids=None)
    ctx = commands.CommandContext(session=db.session, package=locked, transition=transition, params={},
                                  user_id=None, destination=transition.destination_state)
    # As if another transaction had moved it in between (the row lock makes this impossible in real runs).
    db.session.execute(update(Package).where(Package.id == package.id).values(version=Package.version + 1)
                       .execution_options(synchronize_session=False))
    with pytest.raises(ConcurrentChange):
        commands.apply_command(ctx)
    assert not db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id)).all()
    db.session.rollback()


def test_leaving_the_counter_writes_the_shelf_release_before_the_command_audit_row(make):
    store = make.store()
    slot = shelf.create_slot(db.session, store.id, label="C3", store_ids=None)
    package_id = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP).id
    shelf.assign(db.session, package_id, slot_id=slot.id, user_id=None, store_ids=None)
    commands.run_command(db.session, package_id, slug="block-the-package-for-action-from-ready-for-customer-pickup",
                         params={"note": "ID check"}, user_id=None, store_ids=None)
    rows = db.session.scalars(select(PackageLog).where(PackageLog.package_id == package_id)
                              .order_by(PackageLog.id)).all()
    assert [row.command for row in rows][-2:] == [shelf.FREE, "block-the-package-for-action-from-ready-for-customer-pickup"]
    assert shelf.current(db.session, package_id) is None


def test_the_command_message_is_the_handler_toast_or_the_default_read_when_asked(make):
    package = make.package(state=State.WAITING)
    result = run(package)
    assert result.message == f"Package {package.number}: {result.command_name} done."
    assert commands.CommandResult(package=package, transition=None, from_state=1, to_state=1, sms_ids=[],
                                  toast="Sent.").message == "Sent."


def test_a_token_of_store_staff_without_a_store_reaches_no_package(make):
    store = make.store()
    staff = make.user(role="staff", stores=[store])
    key = auth.create_api_token(db.session, staff)
    staff.stock_locations = []
    db.session.commit()
    owner = auth.token_owner(db.session, key)
    assert owner is not None and owner.store_ids == []
    with pytest.raises(NotFound):
        lock_package(db.session, make.package(store=store).id, owner.store_ids)
    db.session.rollback()


def test_the_panel_drawn_after_a_command_reloads_neither_the_user_nor_the_transitions(client, make, store, zeynep,
                                                                                    monkeypatch):
    monkeypatch.setattr(commands, "TRANSITION_CACHE_SECONDS", 3600.0)  # a slow machine must not age the cache out
    first, package = make.package(store=store, state=State.PACKED), make.package(store=store, state=State.PACKED)
    package_id = package.id
    assert client.post(f"/packages/{first.id}/commands/ready-for-customer-pickup",
                       headers={"HX-Request": "true"}).status_code == 200  # the transitions are cached now
    db.session.expire_all()
    seen, collect = count_statements()
    try:
        answer = client.post(f"/packages/{package_id}/commands/ready-for-customer-pickup",
                             headers={"HX-Request": "true"})
    finally:
        event.remove(db.engine, "before_cursor_execute", collect)
    assert answer.status_code == 200 and b"package-panel" in answer.data
    moved = next(i for i, s in enumerate(seen) if "UPDATE packages SET state" in s)
    after = [" ".join(s.split()) for s in seen[moved + 1:]]
    # The user's visibility and role were read before the commit; the panel's commands and the history's command
    # names come from the per-process cache of transitions.
    assert not [s for s in after if s.startswith(("SELECT users.", "SELECT stock_locations."))], after
    assert not [s for s in seen if "FROM transitions" in s], seen
    # The package comes back with its items in one statement.
    reloads = [s for s in after if s.startswith("SELECT packages.")]
    assert len(reloads) == 1 and "package_items" in reloads[0], reloads
    assert not [s for s in after if s.startswith("SELECT package_items")], after


def test_a_command_reads_each_setting_once_per_transaction(client, make, store, zeynep, monkeypatch):
    monkeypatch.setattr(commands, "TRANSITION_CACHE_SECONDS", 3600.0)
    first, package = make.package(store=store, state=State.PACKED), make.package(store=store, state=State.PACKED)
    assert client.post(f"/packages/{first.id}/commands/ready-for-customer-pickup",
                       headers={"HX-Request": "true"}).status_code == 200
    keys: list[str] = []

    def collect(conn, cursor, statement, parameters, context, executemany):
        if "FROM application_settings" in statement:
            keys.append(str(parameters))

    event.listen(db.engine, "before_cursor_execute", collect)
    try:
        answer = client.post(f"/packages/{package.id}/commands/ready-for-customer-pickup",
                             headers={"HX-Request": "true"})
    finally:
        event.remove(db.engine, "before_cursor_execute", collect)
    assert answer.status_code == 200
    # The form, the code check and the panel each ask whether codes are on (three SELECTs before): once in the
    # command's transaction, once for the panel drawn after its commit.
    assert keys and all(keys.count(key) <= 2 for key in keys), keys


def test_a_setting_read_once_still_sees_its_own_save_and_the_next_transaction_sees_others(make):
    from portal.settings import service as settings

    assert settings.is_otp_enabled(db.session) is True
    seen, collect = count_statements()
    try:
        assert [settings.is_otp_enabled(db.session) for _ in range(3)] == [True] * 3
    finally:
        event.remove(db.engine, "before_cursor_execute", collect)
    assert seen == []  # read once in this transaction
    settings.set_value(db.session, settings.IS_OTP_ENABLED, False, user_id=None)
    assert settings.is_otp_enabled(db.session) is False  # its own save, before the commit
    db.session.commit()
    # Another session changes it; this session's next transaction sees the change.
    other = db.session.session_factory()
    try:
        settings.set_value(other, settings.IS_OTP_ENABLED, True, user_id=None)
        other.commit()
    finally:
        other.close()
    assert settings.is_otp_enabled(db.session) is True
    # A caller may change the dict it got without changing what the next caller reads.
    from portal.settings.models import ApplicationSetting
    db.session.add(ApplicationSetting(key="ORDER_FILTERING", json_value={"channels": [], "statuses": []}))
    db.session.commit()
    mine = settings.get_value(db.session, "ORDER_FILTERING")
    mine["changed_by_caller"] = True
    assert "changed_by_caller" not in settings.get_value(db.session, "ORDER_FILTERING")
    db.session.rollback()


def test_the_app_lets_a_thread_back_from_the_database_take_the_gil_within_a_millisecond():
    import sys

    from portal import create_app
    from portal.config import ConfigurationError

    before = sys.getswitchinterval()
    base = {"ENV_NAME": "testing", "TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"}
    try:
        sys.setswitchinterval(0.005)
        create_app(base)
        assert sys.getswitchinterval() == pytest.approx(0.001)  # the default
        create_app({**base, "GIL_SWITCH_INTERVAL_MS": 2.5})
        assert sys.getswitchinterval() == pytest.approx(0.0025)
        sys.setswitchinterval(0.005)
        create_app({**base, "GIL_SWITCH_INTERVAL_MS": 0})  # 0 keeps Python's own
        assert sys.getswitchinterval() == pytest.approx(0.005)
        with pytest.raises(ConfigurationError, match="GIL_SWITCH_INTERVAL_MS"):
            create_app({**base, "GIL_SWITCH_INTERVAL_MS": -1})
    finally:
        sys.setswitchinterval(before)
