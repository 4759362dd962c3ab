"""Two tablets, one package: simultaneous handovers give exactly one delivery, and no guess is lost."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select

from portal.errors import CommandRejected, ConcurrentChange, InvalidOtp
from portal.extensions import db
from portal.otp.models import OtpAttempt, PickupCode
from portal.outbox.models import OutboxMessage
from portal.packages import commands
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.sms import MemorySmsProvider

ROUNDS = 4


def ready_for_pickup(make, store) -> tuple[int, str]:
    """A package ready for pickup and the code its customer got."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    code = re.search(r" is (\d+)\.", MemorySmsProvider.outbox[-1].body).group(1)
    return package.id, code


def at_once(app, work, count: int) -> list:
    """Run work(i) in `count` threads released together, each with its own app context and session.

    Returns what each returned, or the exception it raised.
    """
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def tablet(i: int) -> None:
        """One tablet: wait for the others, then act."""
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                outcomes[i] = work(i)
            except Exception as exc:  # the test inspects every outcome, expected or not
                outcomes[i] = exc
            finally:
                db.session.remove()

    db.session.commit()  # the test's own session must hold no transaction the tablets would wait for
    threads = [threading.Thread(target=tablet, args=(i,), name=f"tablet-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a tablet hung"
    return outcomes


def deliver(package_id: int, code: str, user_id: int):
    """What a tablet does when staff confirm the handover."""
    return commands.run_command(db.session, package_id, slug="self-service-package-delivery",
                                params={"otp": code}, user_id=user_id, store_ids=None)


def assert_exactly_one_delivery(package_id: int, outcomes: list) -> None:
    """One tablet delivered; the other was told the package changed; the database agrees."""
    delivered = [o for o in outcomes if isinstance(o, commands.CommandResult)]
    others = [o for o in outcomes if not isinstance(o, commands.CommandResult)]
    assert len(delivered) == 1, outcomes
    assert all(isinstance(o, (CommandRejected, ConcurrentChange)) for o in others), outcomes
    db.session.expire_all()
    assert db.session.get(Package, package_id).state == State.DELIVERED
    assert db.session.get(Package, package_id).version == 3  # packed 1, ready 2, delivered 3: one write each
    assert db.session.scalar(select(func.count()).select_from(PackageLog).where(
        PackageLog.package_id == package_id, PackageLog.to_state == State.DELIVERED)) == 1
    assert db.session.scalar(select(func.count()).select_from(OtpAttempt).where(
        OtpAttempt.package_id == package_id, OtpAttempt.success.is_(True))) == 1
    assert db.session.scalar(select(func.count()).select_from(OtpAttempt).where(
        OtpAttempt.package_id == package_id, OtpAttempt.success.is_(False))) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.package_id == package_id, OutboxMessage.kind == "event",
        OutboxMessage.event_type == "package.status.delivered")) == 1


def _two_tablets_one_code(app, make) -> None:
    """Several rounds of two tablets submitting the right code for one package at the same moment."""
    store = make.store()
    # Plain ids: the test's objects belong to the test's session, which threads must not touch.
    user_ids = [make.user("tablet1", stores=[store]).id, make.user("tablet2", stores=[store]).id]
    for _ in range(ROUNDS):
        package_id, code = ready_for_pickup(make, store)
        outcomes = at_once(app, lambda i, package_id=package_id, code=code: deliver(package_id, code, user_ids[i]), 2)
        assert_exactly_one_delivery(package_id, outcomes)


@pytest.mark.postgres_only
def test_two_tablets_one_code_on_postgresql(app, make):
    _two_tablets_one_code(app, make)


def test_two_tablets_one_code_on_sqlite(app, make, database):
    if database.name != "sqlite":
        pytest.skip("the PostgreSQL race is test_two_tablets_one_code_on_postgresql")
    _two_tablets_one_code(app, make)


def test_simultaneous_wrong_codes_are_all_counted_and_lock_the_code(app, make):
    store = make.store()
    clerk_ids = [make.user(f"clerk{i}", stores=[store]).id for i in range(6)]
    package_id, code = ready_for_pickup(make, store)
    wrong = f"{(int(code) + 1) % 1000000:06d}"

    outcomes = at_once(app, lambda i: deliver(package_id, wrong, clerk_ids[i]), 6)

    assert all(isinstance(o, (InvalidOtp, ConcurrentChange)) for o in outcomes), outcomes
    db.session.expire_all()
    pickup = db.session.scalar(select(PickupCode).where(PickupCode.package_id == package_id))
    failures = db.session.scalar(select(func.count()).select_from(OtpAttempt).where(OtpAttempt.success.is_(False)))
    rejected = sum(isinstance(o, InvalidOtp) for o in outcomes)
    # Every wrong code that was checked is counted once: no increment is lost to a race.
    assert pickup.failed_attempts == failures == min(rejected, 5)
    if rejected >= 5:
        assert pickup.status == PickupCode.LOCKED
    assert db.session.get(Package, package_id).state == State.READY_FOR_CUSTOMER_PICKUP


def test_two_tablets_through_the_web_get_one_success_and_never_a_500(app, make):
    store = make.store()
    make.user("tablet1", stores=[store])
    make.user("tablet2", stores=[store])
    clients = [app.test_client(), app.test_client()]
    for i, client in enumerate(clients):
        assert client.post("/login", data={"username": f"tablet{i + 1}", "password": "correct-horse-1"}
                           ).status_code == 302

    for _ in range(2):
        package_id, code = ready_for_pickup(make, store)
        url = f"/packages/{package_id}/commands/self-service-package-delivery"
        responses = at_once(app, lambda i, url=url, code=code: clients[i].post(url, data={"otp": code},
                                                                               headers={"HX-Request": "true"}), 2)

        assert not any(isinstance(r, BaseException) for r in responses), responses
        statuses = sorted(r.status_code for r in responses)
        assert statuses[0] == 200 and statuses[1] in (409, 422), statuses
        assert 500 not in statuses
        db.session.expire_all()
        assert db.session.get(Package, package_id).state == State.DELIVERED
        assert db.session.scalar(select(func.count()).select_from(PackageLog).where(
            PackageLog.package_id == package_id, PackageLog.to_state == State.DELIVERED)) == 1

