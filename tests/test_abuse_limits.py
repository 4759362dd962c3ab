"""Limits that must hold under concurrency: login lockout and the per-user wrong-code limit (issue 11)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from test_concurrency import at_once, deliver, ready_for_pickup

from portal.accounts import auth
from portal.errors import ConcurrentChange, InvalidOtp, RateLimited, ValidationFailed
from portal.extensions import db
from portal.otp.models import OtpAttempt
from portal.packages.models import Package
from portal.packages.states import State

PASSWORD = "correct-horse-1"


@pytest.fixture
def slow_checks(monkeypatch):
    """Make every password check slow, so all concurrent attempts are in flight together; count real checks."""
    checked: list[str] = []
    real = auth.verify_password
    dummy = auth._hasher_and_dummy()[1]

    def slow(password_hash: str, password: str) -> bool:
        if password_hash != dummy:
            checked.append(password)
        time.sleep(0.2)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", slow)
    return checked


def login(username: str, password: str):
    """What the login form does with a submission: the user, or the exception."""
    return auth.authenticate(db.session, username, password)


def test_25_wrong_passwords_at_once_are_not_all_checked_and_lock_the_account(app, make, slow_checks):
    make.user("zeynep")
    limit = app.config["LOGIN_MAX_FAILURES"]

    outcomes = at_once(app, lambda i: login("zeynep", f"guess-number-{i}"), 25)

    assert all(isinstance(o, ValidationFailed) for o in outcomes), outcomes
    assert len(slow_checks) <= limit  # only the first LOGIN_MAX_FAILURES attempts reach the password check
    assert auth.login_lock(db.session, "zeynep") is not None
    with pytest.raises(ValidationFailed):
        login("zeynep", PASSWORD)  # locked: even the right password waits


def test_23_wrong_and_the_right_one_at_once_do_not_log_in(app, make, slow_checks):
    make.user("zeynep")
    passwords = [f"guess-number-{i}" for i in range(23)] + [PASSWORD]

    outcomes = at_once(app, lambda i: login("zeynep", passwords[i]), len(passwords))

    assert all(isinstance(o, ValidationFailed) for o in outcomes), outcomes
    assert auth.login_lock(db.session, "zeynep") is not None


def test_an_unknown_name_locks_like_a_known_one(app, make):
    make.user("zeynep")
    for name in ("zeynep", "nobody"):
        for _ in range(app.config["LOGIN_MAX_FAILURES"]):
            with pytest.raises(ValidationFailed):
                login(name, "guess-guess-1")
    assert auth.login_lock(db.session, "zeynep") is not None
    assert auth.login_lock(db.session, "nobody") is not None


def test_30_wrong_codes_at_once_over_6_packages_count_exactly_to_the_user_limit(app, make):
    store = make.store()
    clerk_id = make.user("clerk", stores=[store]).id
    limit = app.config["OTP_USER_FAILURE_LIMIT"]
    targets = []
    for _ in range(6):
        package_id, code = ready_for_pickup(make, store)
        targets.append((package_id, f"{(int(code) + 1) % 1000000:06d}"))

    outcomes = at_once(app, lambda i: deliver(*targets[i % 6], clerk_id), 30)

    assert all(isinstance(o, (InvalidOtp, RateLimited, ConcurrentChange)) for o in outcomes), outcomes
    db.session.expire_all()
    failures = db.session.scalar(select(func.count()).select_from(OtpAttempt).where(
        OtpAttempt.user_id == clerk_id, OtpAttempt.success.is_(False)))
    assert failures <= limit  # before the fix, 18 or 19 were checked on PostgreSQL
    assert sum(isinstance(o, InvalidOtp) for o in outcomes) == failures
    assert sum(isinstance(o, RateLimited) for o in outcomes) >= 30 - limit - sum(
        isinstance(o, ConcurrentChange) for o in outcomes)
    assert all(db.session.get(Package, pid).state == State.READY_FOR_CUSTOMER_PICKUP for pid, _ in targets)
