"""Logging in and out, login throttling per account, roles, and the admin's IS_OTP_ENABLED switch."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.accounts import auth, management
from portal.accounts.models import LoginSession, LoginThrottle, User
from portal.db_types import utcnow
from portal.extensions import db
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting, SettingChange

PASSWORD = "correct-horse-1"


def user_row(username: str) -> User:
    """The user as the database has it now."""
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.username == username))


def logged_in(client) -> bool:
    """True when the client's session reaches the package list."""
    return client.get("/packages").status_code == 200


def test_staff_log_in_land_on_their_packages_and_log_out(client, make, auth_actions):
    make.user("zeynep")

    response = auth_actions.login("zeynep")

    assert response.status_code == 302
    assert response.headers["Location"] == "/packages"
    assert logged_in(client)
    assert client.get("/login").status_code == 302  # already logged in

    out = auth_actions.logout()

    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert not logged_in(client)
    assert "You are logged out." in client.get("/login").get_data(as_text=True)


def test_logging_out_needs_a_post(client, make, auth_actions):
    make.user("zeynep")
    auth_actions.login("zeynep")

    assert client.get("/logout").status_code == 405
    assert logged_in(client)


def test_passwords_are_stored_as_argon2id_hashes(make):
    make.user("zeynep", password="s3cret-pass-word")

    stored = user_row("zeynep").password_hash

    assert stored.startswith("$argon2id$")
    assert "s3cret-pass-word" not in stored


@pytest.mark.parametrize("username,password", [("zeynep", "wrong-password"), ("nobody", PASSWORD),
                                               ("zeynep", "")])
def test_a_wrong_login_gets_one_generic_message(client, make, auth_actions, username, password):
    make.user("zeynep")

    response = auth_actions.login(username, password)

    assert response.status_code in (400, 401)
    if password:
        assert response.status_code == 401
        assert "Wrong username or password." in response.get_data(as_text=True)
    assert not logged_in(client)


def throttle(username: str) -> LoginThrottle | None:
    """The failed-login record of a typed username, as the database has it now."""
    db.session.expire_all()
    return db.session.get(LoginThrottle, hashlib.sha256(username.encode()).hexdigest())


def test_repeated_wrong_passwords_lock_that_account_only(client, app, make, auth_actions):
    make.user("zeynep")
    make.user("can")
    limit = app.config["LOGIN_MAX_FAILURES"]

    for _ in range(limit):
        assert auth_actions.login("zeynep", "guess-guess-1").status_code == 401
    locked = auth_actions.login("zeynep", PASSWORD)

    assert locked.status_code == 401
    assert "Wrong username or password." in locked.get_data(as_text=True)
    assert not logged_in(client)
    assert throttle("zeynep").locked_until > utcnow()

    assert auth_actions.login("can", PASSWORD).status_code == 302
    assert logged_in(client)


def test_a_locked_account_and_an_unknown_name_get_the_same_answer(client, app, make, auth_actions):
    make.user("zeynep")
    answers = {}
    for name in ("zeynep", "nobody-here"):
        for _ in range(app.config["LOGIN_MAX_FAILURES"]):
            auth_actions.login(name, "guess-guess-1")
        response = auth_actions.login(name, PASSWORD)
        answers[name] = (response.status_code, response.get_data(as_text=True).replace(name, "NAME"))

    assert answers["zeynep"] == answers["nobody-here"]
    assert throttle("nobody-here").locked_until > utcnow()  # unknown names lock alike


def test_a_locked_account_opens_again_after_the_lock_time(client, app, make, auth_actions):
    make.user("zeynep")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        auth_actions.login("zeynep", "guess-guess-1")
    row = throttle("zeynep")
    row.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert auth_actions.login("zeynep", PASSWORD).status_code == 302
    assert throttle("zeynep").failures == 0


def test_a_good_login_resets_the_failure_count(client, app, make, auth_actions):
    make.user("zeynep")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        auth_actions.login("zeynep", "guess-guess-1")
    assert throttle("zeynep").failures == app.config["LOGIN_MAX_FAILURES"] - 1

    assert auth_actions.login("zeynep", PASSWORD).status_code == 302
    assert throttle("zeynep").failures == 0


def test_a_finished_login_gives_its_slot_back(client, app, make, auth_actions):
    make.user("zeynep")

    assert auth_actions.login("zeynep", "guess-guess-1").status_code == 401
    assert (throttle("zeynep").failures, throttle("zeynep").in_flight) == (1, 0)
    assert auth_actions.login("zeynep", PASSWORD).status_code == 302
    assert (throttle("zeynep").failures, throttle("zeynep").in_flight) == (0, 0)


def test_a_login_that_finds_every_slot_busy_gets_the_one_answer(client, app, make, auth_actions):
    make.user("zeynep")
    limit = app.config["LOGIN_MAX_FAILURES"]
    app.config["LOGIN_BUSY_WAIT_SECONDS"] = 0.2
    for _ in range(limit):
        auth_actions.login("nobody-here", "guess-guess-1")
    locked = auth_actions.login("nobody-here", PASSWORD)
    db.session.add(LoginThrottle(key=hashlib.sha256(b"zeynep").hexdigest(), failures=0, in_flight=limit,
                                 in_flight_at=utcnow(), updated_at=utcnow()))  # checks in flight elsewhere
    db.session.commit()

    busy = auth_actions.login("zeynep", PASSWORD)

    assert (busy.status_code, busy.get_data(as_text=True).replace("zeynep", "NAME")) == (
        locked.status_code, locked.get_data(as_text=True).replace("nobody-here", "NAME"))
    assert not logged_in(client)
    assert throttle("zeynep").locked_until is None  # only busy: nothing counted, nothing locked


def test_the_throttle_keeps_no_typed_text(client, make, auth_actions):
    auth_actions.login("my-secret-password-typed-as-name", "guess-guess-1")

    keys = [row.key for row in db.session.scalars(select(LoginThrottle))]
    assert keys == [hashlib.sha256(b"my-secret-password-typed-as-name").hexdigest()]


def test_logout_ends_the_session_on_the_server(client, make, auth_actions):
    make.user("zeynep")
    auth_actions.login("zeynep")
    copied = client.get_cookie("session").value  # someone copies the cookie before logout

    auth_actions.logout()
    client.set_cookie("session", copied)

    assert not logged_in(client)
    assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 0


def test_a_password_reset_ends_sessions_and_api_tokens(client, app, make, auth_actions):
    user = make.user("zeynep")
    auth_actions.login("zeynep")
    key = auth.create_api_token(db.session, user_row("zeynep"))
    assert client.get("/api/v1/oms/transitions/", headers={"Authorization": f"Token {key}"}).status_code != 401
    assert logged_in(client)

    management.reset_password(db.session, user.id, "a-brand-new-pass", actor_id=None)

    assert not logged_in(client)
    assert client.get("/api/v1/oms/transitions/", headers={"Authorization": f"Token {key}"}).status_code == 401
    assert auth_actions.login("zeynep", "a-brand-new-pass").status_code == 302


def test_a_login_session_expires(client, app, make, auth_actions):
    make.user("zeynep")
    auth_actions.login("zeynep")
    for row in db.session.scalars(select(LoginSession)):
        row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert not logged_in(client)


def test_a_deactivated_user_cannot_log_in_and_loses_their_session(client, make, auth_actions):
    make.user("zeynep")
    auth_actions.login("zeynep")
    assert logged_in(client)

    user = user_row("zeynep")
    user.active = False
    db.session.commit()

    assert not logged_in(client)
    response = auth_actions.login("zeynep", PASSWORD)
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert not logged_in(client)


@pytest.mark.parametrize("target", ["//evil.com", "https://evil.com/packages", "//evil.com/%2F..", "evil.com",
                                    "/\\evil.com", "javascript:alert(1)"])
def test_login_does_not_follow_a_next_link_to_another_site(client, make, target):
    make.user("zeynep")

    response = client.post("/login", query_string={"next": target},
                           data={"username": "zeynep", "password": PASSWORD})

    assert response.status_code == 302
    assert response.headers["Location"] == "/packages"


def test_login_follows_a_next_link_on_this_site(client, make):
    package = make.package()
    make.user("admin", role="admin")

    first = client.get(f"/packages/{package.id}")
    assert first.status_code == 302 and "next=" in first.headers["Location"]
    response = client.post(first.headers["Location"], data={"username": "admin", "password": PASSWORD})

    assert response.headers["Location"] == f"/packages/{package.id}"


@pytest.mark.parametrize("path", ["/admin/settings", "/admin/outbox"])
@pytest.mark.parametrize("role", ["staff", "brand_manager"])
def test_only_admins_open_the_admin_pages(client, make, auth_actions, path, role):
    make.user("someone", role=role)
    auth_actions.login("someone")

    assert client.get(path).status_code == 403
    assert client.post("/admin/settings/otp", data={"enabled": "false"}).status_code == 403
    assert settings.is_otp_enabled(db.session) is True


def test_anonymous_visitors_are_sent_to_login_from_admin_pages(client):
    response = client.get("/admin/settings")

    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_an_admin_switches_pickup_codes_off_and_on(client, make, auth_actions):
    admin = make.user("admin", role="admin")
    auth_actions.login("admin")
    assert "Turn pickup codes off" in client.get("/admin/settings").get_data(as_text=True)

    off = client.post("/admin/settings/otp", data={"enabled": "false"})

    assert off.status_code == 302
    db.session.expire_all()
    assert settings.is_otp_enabled(db.session) is False
    row = db.session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == "IS_OTP_ENABLED"))
    assert (row.json_value, row.updated_by_id) == (False, admin.id)
    [change] = db.session.scalars(select(SettingChange))
    assert (change.key, change.user_id, change.area) == ("IS_OTP_ENABLED", admin.id, "setting")
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Turn pickup codes on" in page

    on = client.post("/admin/settings/otp", data={"enabled": "true"}, headers={"HX-Request": "true"})

    assert on.status_code == 200
    assert "Pickup codes are on." in on.headers["HX-Trigger"]
    assert "<html" not in on.get_data(as_text=True)
    db.session.expire_all()
    assert settings.is_otp_enabled(db.session) is True
    assert len(db.session.scalars(select(SettingChange)).all()) == 2


def test_the_profile_page_creates_an_api_token_shown_once(client, make, auth_actions):
    user = make.user("zeynep")
    auth_actions.login("zeynep")

    page = client.post("/profile").get_data(as_text=True)

    db.session.expire_all()
    [token] = db.session.get(User, user.id).api_tokens
    key = next(word for word in page.replace("<", " ").replace(">", " ").split() if word.startswith(token.prefix))
    assert auth.user_for_token(db.session, key).id == user.id
    assert key not in client.get("/profile").get_data(as_text=True)


def test_two_people_on_two_tablets_stay_who_they_are(app, make):
    own, other = make.store(), make.store()
    make.user("zeynep", stores=[own])
    make.user("can", stores=[other])
    mine, theirs = make.package(store=own), make.package(store=other)
    zeynep, can, stranger = app.test_client(), app.test_client(), app.test_client()

    assert zeynep.post("/login", data={"username": "zeynep", "password": PASSWORD}).status_code == 302
    assert stranger.get("/packages").status_code == 302
    assert can.post("/login", data={"username": "can", "password": PASSWORD}).status_code == 302

    assert zeynep.get(f"/packages/{mine.id}").status_code == 200
    assert zeynep.get(f"/packages/{theirs.id}").status_code == 404
    assert can.get(f"/packages/{theirs.id}").status_code == 200
    assert can.get(f"/packages/{mine.id}").status_code == 404


def test_admin_sees_the_outbox_filtered_by_status(client, make, auth_actions, sms):
    from portal.extensions import db as database
    from portal.outbox import service as outbox

    make.user("root", "admin")
    auth_actions.login("root")
    package = make.package()
    sent = outbox.enqueue_sms(database.session, to="+905550000001", body="hello", package_id=package.id)
    database.session.commit()
    outbox.deliver_sms(database.session, sent.id)

    everything = client.get("/admin/outbox")
    only_failed = client.get("/admin/outbox?status=failed")
    fragment = client.get("/admin/outbox?status=sent", headers={"HX-Request": "true"})

    assert everything.status_code == 200 and b"<html" in everything.data
    assert f">{package.id}</a>".encode() in everything.data
    assert only_failed.status_code == 200 and f">{package.id}</a>".encode() not in only_failed.data
    assert fragment.status_code == 200 and b"<html" not in fragment.data
    assert f">{package.id}</a>".encode() in fragment.data


def test_staff_may_not_open_the_outbox(client, make, auth_actions):
    make.user("zeynep")
    auth_actions.login("zeynep")
    assert client.get("/admin/outbox").status_code == 403


def test_a_hash_of_another_cost_is_remade_at_the_next_good_login(app, make, auth_actions):
    from argon2 import PasswordHasher

    user = make.user("zeynep")
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)  # the library's default cost
    user.password_hash = old.hash(PASSWORD)
    db.session.commit()

    assert auth_actions.login("zeynep").status_code == 302

    remade = user_row("zeynep").password_hash
    assert f"m={app.config['ARGON2_MEMORY_COST']},t={app.config['ARGON2_TIME_COST']}," in remade
    assert auth.verify_password(remade, PASSWORD)


def test_outside_tests_the_cost_is_owasps_argon2id_setting():
    from portal.config import Config, ProductionConfig

    for config in (Config, ProductionConfig):
        assert (config.ARGON2_MEMORY_COST, config.ARGON2_TIME_COST, config.ARGON2_PARALLELISM) == (19456, 2, 1)
