"""Remembered login devices: a tablet where a user logged in checks that user's next password with a keyed HMAC
instead of Argon2id (the shift-start login storm), without weakening what a copied database or cookie gives."""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal.accounts import auth, management
from portal.accounts.models import LoginDevice
from portal.db_types import utcnow
from portal.extensions import db

PASSWORD = "correct-horse-1"


@pytest.fixture
def checks(monkeypatch):
    """The passwords really checked with Argon2id (the dummy check of unknown names left out)."""
    checked: list[str] = []
    real = auth.verify_password
    dummy = auth._hasher_and_dummy()[1]

    def counting(password_hash: str, password: str) -> bool:
        if password_hash != dummy:
            checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    return checked


def device_cookie(client):
    """The device cookie the browser holds (None: none)."""
    cookie = client.get_cookie(auth.DEVICE_COOKIE, path="/login")
    return cookie.value if cookie is not None else None


def test_a_tablet_where_the_user_logged_in_checks_the_next_password_without_argon2(client, app, make, auth_actions,
                                                                                  checks):
    make.user("zeynep")
    first = auth_actions.login("zeynep")
    assert first.status_code == 302 and checks == [PASSWORD]
    set_cookie = next(h for h in first.headers.getlist("Set-Cookie") if h.startswith(auth.DEVICE_COOKIE + "="))
    assert "HttpOnly" in set_cookie and "Path=/login" in set_cookie and "SameSite=Strict" in set_cookie
    assert f"Max-Age={30 * 86400}" in set_cookie
    auth_actions.logout()

    again = auth_actions.login("zeynep")
    assert again.status_code == 302 and checks == [PASSWORD]  # no second Argon2id check
    assert client.get("/packages").status_code == 200

    other_browser = app.test_client()
    assert other_browser.post("/login", data={"username": "zeynep", "password": PASSWORD}).status_code == 302
    assert checks == [PASSWORD, PASSWORD]


def test_a_wrong_password_on_a_remembered_tablet_is_checked_counted_and_locks_as_usual(client, app, make,
                                                                                      auth_actions, checks):
    user = make.user("zeynep")
    auth_actions.login("zeynep")
    auth_actions.logout()
    for attempt in range(app.config["LOGIN_MAX_FAILURES"]):
        assert auth_actions.login("zeynep", f"wrong-{attempt}").status_code == 401
    assert checks == [PASSWORD] + [f"wrong-{n}" for n in range(app.config["LOGIN_MAX_FAILURES"])]
    assert management.is_locked(user)

    assert auth_actions.login("zeynep").status_code == 401  # locked: the remembered tablet does not get round it
    assert client.get("/packages").status_code in (302, 401)


def test_the_database_alone_cannot_check_a_password(client, app, make, auth_actions):
    make.user("zeynep")
    auth_actions.login("zeynep")
    key = device_cookie(client)
    [device] = db.session.scalars(select(LoginDevice)).all()

    stored = (device.device_digest, device.verifier)
    assert key and all(key not in value for value in stored)
    assert device.device_digest == hashlib.sha256(key.encode()).hexdigest()
    # Neither the cookie alone nor the server's secret alone makes the verifier.
    cookie_only = hmac.new(key.encode(), PASSWORD.encode(), hashlib.sha256).hexdigest()
    secret_only = hmac.new(app.config["SECRET_KEY"].encode(), PASSWORD.encode(), hashlib.sha256).hexdigest()
    assert device.verifier not in (cookie_only, secret_only, hashlib.sha256(PASSWORD.encode()).hexdigest())


def test_a_password_reset_forgets_the_users_tablets(client, make, auth_actions, checks):
    user = make.user("zeynep")
    admin = make.user("aylin", role="admin")
    auth_actions.login("zeynep")
    auth_actions.logout()

    management.reset_password(db.session, user.id, "brand-new-secret-2", actor_id=admin.id)
    assert db.session.scalar(select(func.count()).select_from(LoginDevice)) == 0
    assert auth_actions.login("zeynep").status_code == 401  # the old password, on the tablet it worked on
    assert auth_actions.login("zeynep", "brand-new-secret-2").status_code == 302
    assert checks[-1] == "brand-new-secret-2"


def test_a_deactivated_user_is_refused_on_a_remembered_tablet(client, make, auth_actions):
    user = make.user("zeynep")
    admin = make.user("aylin", role="admin")
    auth_actions.login("zeynep")
    auth_actions.logout()

    management.set_active(db.session, user.id, False, actor_id=admin.id)
    db.session.commit()
    assert auth_actions.login("zeynep").status_code == 401


def test_each_user_of_a_shared_tablet_is_remembered_apart(client, make, auth_actions, checks):
    make.user("zeynep")
    make.user("mert")
    auth_actions.login("zeynep")
    key = device_cookie(client)
    auth_actions.logout()
    auth_actions.login("mert")  # another user on the same tablet: checked with Argon2id, then remembered too
    auth_actions.logout()
    assert checks == [PASSWORD, PASSWORD] and device_cookie(client) == key

    assert auth_actions.login("zeynep").status_code == 302
    auth_actions.logout()
    assert auth_actions.login("mert").status_code == 302
    assert checks == [PASSWORD, PASSWORD]
    assert db.session.scalar(select(func.count()).select_from(LoginDevice)) == 2


def test_a_lapsed_device_checks_with_argon2_again_and_a_used_one_lives_on(client, make, auth_actions, checks):
    make.user("zeynep")
    auth_actions.login("zeynep")
    auth_actions.logout()
    db.session.execute(update(LoginDevice).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    assert auth_actions.login("zeynep").status_code == 302
    assert checks == [PASSWORD, PASSWORD]
    auth_actions.logout()
    assert auth_actions.login("zeynep").status_code == 302
    assert checks == [PASSWORD, PASSWORD]
    db.session.expire_all()
    [device] = db.session.scalars(select(LoginDevice)).all()
    assert device.expires_at > utcnow() + timedelta(days=29)


def test_a_device_key_the_server_never_issued_is_replaced(client, make, auth_actions, checks):
    make.user("zeynep")
    client.set_cookie(auth.DEVICE_COOKIE, "chosen-by-someone-else", path="/login")
    assert auth_actions.login("zeynep").status_code == 302
    key = device_cookie(client)
    assert key and key != "chosen-by-someone-else"
    digest = db.session.scalar(select(LoginDevice.device_digest))
    assert digest == hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize("app_config", [{"LOGIN_DEVICE_DAYS": 0}])
def test_with_login_device_days_0_every_login_checks_with_argon2(client, make, auth_actions, checks):
    make.user("zeynep")
    first = auth_actions.login("zeynep")
    assert not [h for h in first.headers.getlist("Set-Cookie") if h.startswith(auth.DEVICE_COOKIE + "=")]
    auth_actions.logout()
    assert auth_actions.login("zeynep").status_code == 302
    assert checks == [PASSWORD, PASSWORD]
    assert db.session.scalar(select(func.count()).select_from(LoginDevice)) == 0


def test_a_stores_remembered_tablets_logging_in_at_once_all_get_in_without_one_argon2_check(app, make, checks):
    from test_concurrency import at_once

    from portal.accounts.models import LoginThrottle

    make.user("zeynep")  # the store's one shared account
    devices = [auth.log_in(db.session, "zeynep", PASSWORD).device_key for _ in range(12)]  # yesterday, one by one
    assert len(checks) == 12 and len(set(devices)) == 12

    outcomes = at_once(app, lambda i: auth.log_in(db.session, "zeynep", PASSWORD, devices[i]), 12)

    assert all(isinstance(o, auth.LoggedIn) for o in outcomes), outcomes
    assert [o.device_key for o in outcomes] == devices
    assert len(checks) == 12  # the shift start checked no password with Argon2id
    db.session.expire_all()
    row = db.session.get(LoginThrottle, auth._throttle_key("zeynep"))
    assert (row.failures, row.in_flight) == (0, 0)


def test_a_password_reset_while_a_login_waits_for_its_slot_is_seen_by_that_login(app, make):
    import threading
    import time

    from portal.accounts.models import LoginThrottle
    from portal.errors import ValidationFailed

    user = make.user("zeynep")
    admin = make.user("aylin", role="admin")
    device = auth.log_in(db.session, "zeynep", PASSWORD).device_key
    key = auth._throttle_key("zeynep")
    db.session.execute(update(LoginThrottle).where(LoginThrottle.key == key)
                       .values(in_flight=app.config["LOGIN_MAX_FAILURES"], in_flight_at=utcnow()))
    db.session.commit()  # every slot busy: the next login waits for one
    outcome: list = []

    def tablet() -> None:
        with app.app_context():
            try:
                outcome.append(auth.log_in(db.session, "zeynep", PASSWORD, device))
            except Exception as exc:  # the test inspects it
                outcome.append(exc)
            finally:
                db.session.remove()

    waiting = threading.Thread(target=tablet)
    waiting.start()
    time.sleep(0.3)  # the login is waiting for a slot now
    management.reset_password(db.session, user.id, "brand-new-secret-2", actor_id=admin.id)
    db.session.execute(update(LoginThrottle).where(LoginThrottle.key == key).values(in_flight=0))
    db.session.commit()
    waiting.join(timeout=10)

    # The old password on the tablet it worked on: the device was forgotten before the check, so it is refused.
    assert len(outcome) == 1 and isinstance(outcome[0], ValidationFailed), outcome
