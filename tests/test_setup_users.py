"""Setup step 2: an admin creates users, edits their role and stores, (de)activates them and resets passwords."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.accounts import auth, management
from portal.accounts.models import User
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.settings.models import SettingChange
from portal.setup import service as wizard
from portal.setup.models import SetupStep

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("ayse", "admin")
    assert auth_actions.login("ayse").status_code == 302
    return user


def user_named(username: str) -> User | None:
    """The user with this username, fresh from the database."""
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.username == username))


def user_count() -> int:
    """How many users exist."""
    return db.session.scalar(select(func.count()).select_from(User))


def step_state() -> str:
    """The recorded state of step 2."""
    db.session.expire_all()
    return wizard.status(db.session, "users").state


def new_user_form(**overrides) -> dict:
    """What the "Add a user" form posts."""
    form = {"form": "new-user", "username": "zeynep", "full_name": "Zeynep Kaya", "role": "staff",
            "password": "counter-pass-1"}
    form.update(overrides)
    return form


def test_admin_adds_store_staff_and_the_step_is_done(client, admin, make):
    store = make.store("IST-KDK", "Kadıköy")
    page = client.get("/setup/users")
    assert page.status_code == 200
    assert b"Kad\xc4\xb1k\xc3\xb6y" in page.data and b"ayse" in page.data

    response = client.post("/setup/users", data={**new_user_form(), "stores": [str(store.id)]})

    assert response.status_code == 302
    zeynep = user_named("zeynep")
    assert zeynep.role == "staff" and zeynep.full_name == "Zeynep Kaya" and zeynep.active
    assert zeynep.store_ids == [store.id]
    assert auth.verify_password(zeynep.password_hash, "counter-pass-1")
    audit = db.session.scalar(select(SettingChange).where(SettingChange.key == "zeynep"))
    assert (audit.area, audit.action, audit.user_id) == ("user", "create", admin.id)
    assert step_state() == SetupStep.DONE
    assert "Zeynep Kaya" in client.get("/setup/users").get_data(as_text=True)


def test_htmx_add_answers_with_a_fresh_form_the_table_out_of_band_and_a_toast(client, admin, make):
    store = make.store()
    response = client.post("/setup/users", data={**new_user_form(), "stores": [str(store.id)]}, headers=HX)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="user-create">')
    assert 'id="user-panel"' in html and 'hx-swap-oob="true"' in html and "zeynep" in html
    assert 'id="step-state" hx-swap-oob="true"' in html and "Done" in html
    assert "User zeynep created." in response.headers["HX-Trigger"]
    assert user_named("zeynep") is not None


@pytest.mark.parametrize("overrides, message", [
    ({}, "Store staff need at least one store."),
    ({"username": "ayse", "role": "admin"}, "The username &#39;ayse&#39; is taken."),
    ({"role": "admin", "password": "short"}, "The password must be at least 8 characters."),
    ({"role": "superuser"}, "Choose a role"),
    ({"username": "two words", "role": "admin"}, "one word"),
    ({"stores": ["999"], "role": "brand_manager"}, "no longer exists"),
])
def test_bad_new_user_is_refused_with_a_message_and_nothing_is_created(client, admin, overrides, message):
    before = user_count()
    response = client.post("/setup/users", data=new_user_form(**overrides), headers=HX)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert user_count() == before
    assert db.session.scalar(select(func.count()).select_from(SettingChange)) == 0


def test_bad_new_user_without_htmx_shows_the_page_with_the_form_filled_in(client, admin):
    response = client.post("/setup/users", data=new_user_form(full_name="Zeynep Kaya"))

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<h1>Step 2: Create users</h1>" in html
    assert "Store staff need at least one store." in html
    assert 'value="Zeynep Kaya"' in html
    assert user_named("zeynep") is None


def test_admin_changes_a_users_role_name_and_stores(client, admin, make):
    first, second = make.store(), make.store()
    staff = make.user("mehmet", "staff", stores=[first])

    dialog = client.get(f"/setup/users/{staff.id}/edit", headers=HX)
    assert dialog.status_code == 200
    assert 'id="modal-title">Edit mehmet' in dialog.get_data(as_text=True)

    response = client.post(f"/setup/users/{staff.id}", headers=HX, data={
        "form": "edit-user", "full_name": "Mehmet Demir", "role": "staff", "stores": [str(first.id), str(second.id)]})

    assert response.status_code == 200
    assert "close-modal" in response.headers["HX-Trigger"] and "mehmet saved." in response.headers["HX-Trigger"]
    assert "Mehmet Demir" in response.get_data(as_text=True)
    mehmet = user_named("mehmet")
    assert mehmet.full_name == "Mehmet Demir" and sorted(mehmet.store_ids) == sorted([first.id, second.id])


def test_staff_cannot_lose_their_last_store(client, admin, make):
    store = make.store()
    staff = make.user("mehmet", "staff", stores=[store])

    response = client.post(f"/setup/users/{staff.id}", headers=HX,
                           data={"form": "edit-user", "full_name": "Mehmet", "role": "staff"})

    assert response.status_code == 422
    assert "Store staff need at least one store." in response.get_data(as_text=True)
    assert user_named("mehmet").store_ids == [store.id]
    assert user_named("mehmet").full_name == ""


def test_the_last_active_admin_cannot_be_demoted(client, admin):
    response = client.post(f"/setup/users/{admin.id}", headers=HX,
                           data={"form": "edit-user", "full_name": "Ayşe", "role": "brand_manager"})

    assert response.status_code == 422
    assert "ayse is the last active admin" in response.get_data(as_text=True)
    assert user_named("ayse").role == "admin"
    assert user_named("ayse").full_name == ""


def test_an_admin_may_be_demoted_while_another_active_admin_remains(client, admin, make):
    other = make.user("burak", "admin")

    response = client.post(f"/setup/users/{other.id}", data={"form": "edit-user", "role": "brand_manager"})

    assert response.status_code == 302
    assert user_named("burak").role == "brand_manager"


def test_an_inactive_admin_does_not_count_as_the_other_admin(make):
    ayse, burak = make.user("ayse", "admin"), make.user("burak", "admin")
    management.set_active(db.session, burak.id, False, actor_id=ayse.id)

    with pytest.raises(ValidationFailed, match="last active admin"):
        management.update_user(db.session, ayse.id, management.UserInput("", "staff", [make.store().id]),
                               actor_id=None)
    with pytest.raises(ValidationFailed, match="last active admin"):
        management.set_active(db.session, ayse.id, False, actor_id=None)
    assert user_named("ayse").role == "admin" and user_named("ayse").active


def test_an_admin_cannot_deactivate_themself(client, admin, make):
    make.user("burak", "admin")
    response = client.post(f"/setup/users/{admin.id}/active", data={"active": "false"}, headers=HX)

    assert response.status_code == 422
    assert "You cannot deactivate your own account." in response.get_data(as_text=True)
    assert user_named("ayse").active


def test_deactivated_user_cannot_log_in_and_can_be_activated_again(client, admin, make, auth_actions):
    staff = make.user("mehmet", "staff")
    client.post("/setup/users/check")
    assert step_state() == SetupStep.DONE

    response = client.post(f"/setup/users/{staff.id}/active", data={"active": "false"}, headers=HX)

    assert response.status_code == 200
    assert "mehmet deactivated." in response.headers["HX-Trigger"]
    assert not user_named("mehmet").active
    # No other active staff with a store: the step needs attention again.
    assert step_state() == SetupStep.NEEDS_ATTENTION
    assert "store staff" in wizard.status(db.session, "users").record.note
    audit = db.session.scalar(select(SettingChange).where(SettingChange.action == "deactivate"))
    assert audit.key == "mehmet"

    auth_actions.logout()
    assert auth_actions.login("mehmet").status_code == 401  # the login form again, with an error
    auth_actions.login("ayse")
    client.post(f"/setup/users/{staff.id}/active", data={"active": "true"})
    assert user_named("mehmet").active
    assert step_state() == SetupStep.DONE


def test_reset_password_sets_the_new_one_and_lifts_the_lock(client, admin, make, auth_actions):
    staff = make.user("mehmet", "staff")
    for _ in range(client.application.config["LOGIN_MAX_FAILURES"]):
        with pytest.raises(ValidationFailed):
            auth.authenticate(db.session, "mehmet", "wrong-guess-1")
    assert "Locked until" in client.get("/setup/users").get_data(as_text=True)

    response = client.post(f"/setup/users/{staff.id}/password", data={"form": "password",
                                                                      "password": "new-counter-pass"}, headers=HX)

    assert response.status_code == 200
    assert "New password set for mehmet." in response.headers["HX-Trigger"]
    assert auth.login_lock(db.session, "mehmet") is None and auth.recent_login_failures(db.session, "mehmet") == 0
    assert db.session.scalar(select(SettingChange).where(SettingChange.action == "reset_password")).key == "mehmet"
    auth_actions.logout()
    assert auth_actions.login("mehmet", "new-counter-pass").status_code == 302


def test_a_too_short_new_password_is_refused(client, admin, make):
    staff = make.user("mehmet", "staff")
    old_hash = staff.password_hash

    response = client.post(f"/setup/users/{staff.id}/password", data={"form": "password", "password": "1234567"},
                           headers=HX)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The password must be at least 8 characters." in html
    assert 'id="edit-password-error"' in html
    assert user_named("mehmet").password_hash == old_hash


def test_step_needs_a_store_staff_member_before_it_is_done(client, admin):
    response = client.post("/setup/users/check", headers=HX)

    assert response.status_code == 200
    assert "Still needed: an active store staff member with a store." in response.get_data(as_text=True)
    assert step_state() == SetupStep.IN_PROGRESS


def test_only_admins_may_manage_users(client, make, auth_actions):
    make.user("manager", "brand_manager")
    auth_actions.login("manager")

    assert client.get("/setup/users").status_code == 403
    assert client.post("/setup/users", data=new_user_form(role="admin")).status_code == 403
    assert user_named("zeynep") is None


def test_unknown_user_is_404(client, admin):
    assert client.get("/setup/users/999/edit").status_code == 404
    assert client.post("/setup/users/999/password", data={"password": "long-enough-1"}).status_code == 404
