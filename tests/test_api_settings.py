"""Admins read and change application settings such as IS_OTP_ENABLED through the API."""
import pytest
from sqlalchemy import select

from portal.accounts import auth
from portal.extensions import db
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.settings.models import ApplicationSetting, SettingChange

URL = "/api/v1/oms/settings/application_settings/"


def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def otp_setting() -> ApplicationSetting:
    """The IS_OTP_ENABLED row as stored now."""
    db.session.expire_all()
    return db.session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == "IS_OTP_ENABLED"))


def test_admin_lists_the_settings(client, make):
    response = client.get(URL, headers=token_headers(make.user(role="admin")))
    assert response.status_code == 200
    assert response.json == [{"id": otp_setting().id, "key": "IS_OTP_ENABLED", "json_value": True}]


def test_switching_codes_off_lets_staff_hand_over_without_a_code(client, make, sms):
    admin = make.user("boss", role="admin")
    response = client.patch(URL, headers=token_headers(admin), json={"key": "IS_OTP_ENABLED", "json_value": False})
    assert response.status_code == 200
    assert response.json == {"id": otp_setting().id, "key": "IS_OTP_ENABLED", "json_value": False}
    assert otp_setting().json_value is False
    change = db.session.scalar(select(SettingChange))
    assert (change.key, change.user_id) == ("IS_OTP_ENABLED", admin.id)

    store = make.store()
    package = make.package(store=store, state=State.PACKED)
    staff = token_headers(make.user(stores=[store]))
    url = f"/api/v1/oms/packages/{package.id}/command/"
    assert client.post(url, headers=staff, json={"slug": "ready-for-customer-pickup"}).status_code == 204
    assert "code" not in sms.outbox[-1].body
    delivered = client.post(url, headers=staff, json={"slug": "self-service-package-delivery",
                                                       "input_parameters": {"package": package.id}})
    assert delivered.status_code == 204
    assert db.session.scalar(select(Package.state).where(Package.id == package.id)) == State.DELIVERED
    last = db.session.scalar(select(PackageLog).order_by(PackageLog.id.desc()).limit(1))
    assert "IS_OTP_ENABLED is false" in last.note


def test_patch_by_id_in_the_body_or_the_url(client, make):
    headers = token_headers(make.user(role="admin"))
    setting_id = otp_setting().id
    by_body = client.patch(URL, headers=headers, json={"id": setting_id, "json_value": False})
    assert by_body.status_code == 200
    assert otp_setting().json_value is False

    by_url = client.patch(f"{URL}{setting_id}/", headers=headers,
                          json={"id": setting_id, "key": "IS_OTP_ENABLED", "json_value": True})
    assert by_url.status_code == 200
    assert by_url.json["json_value"] is True
    assert otp_setting().json_value is True

    one = client.get(f"{URL}{setting_id}/", headers=headers)
    assert one.json == {"id": setting_id, "key": "IS_OTP_ENABLED", "json_value": True}


def test_a_known_key_not_stored_yet_is_created(client, make):
    headers = token_headers(make.user(role="admin"))
    response = client.patch(URL, headers=headers, json={"key": "PICKUP_CODE_DELIVERY", "json_value": "portal_sms"})
    assert response.status_code == 200
    stored = db.session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == "PICKUP_CODE_DELIVERY"))
    assert stored.json_value == "portal_sms"
    assert response.json == {"id": stored.id, "key": "PICKUP_CODE_DELIVERY", "json_value": "portal_sms"}


def test_an_unknown_key_is_refused_and_nothing_is_stored(client, make):
    headers = token_headers(make.user(role="admin"))
    response = client.patch(URL, headers=headers, json={"key": "STORE_GREETING", "json_value": {"text": "Hi"}})
    assert response.status_code == 400 and response.json["field"] == "key"
    assert "IS_OTP_ENABLED" in response.json["detail"]  # says which keys exist
    assert db.session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == "STORE_GREETING")) is None


def test_secrets_are_stored_encrypted_and_never_returned(client, make):
    headers = token_headers(make.user(role="admin"))
    value = {"auth": {"username": "oms", "password": "s3cret-password-42"}}
    response = client.patch(URL, headers=headers, json={"key": "OMNITRON_CLIENT_SETTINGS", "json_value": value})
    assert response.status_code == 200
    assert response.json["json_value"]["auth"]["username"] == "oms"
    assert response.json["json_value"]["auth"]["password"].startswith("****")
    listed = client.get(URL, headers=headers)
    assert b"s3cret-password" not in listed.data
    assert b"s3cret-password" not in client.get(f"{URL}{response.json['id']}/", headers=headers).data
    stored = db.session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == "OMNITRON_CLIENT_SETTINGS"))
    assert "s3cret-password" not in str(stored.json_value)


@pytest.mark.parametrize("body, field", [
    ({"key": "IS_OTP_ENABLED", "json_value": "no"}, "json_value"),
    ({"key": "IS_OTP_ENABLED", "json_value": 0}, "json_value"),
    ({"key": "IS_OTP_ENABLED"}, "json_value"),
    ({"json_value": False}, "key"),
    ({"id": "one", "json_value": False}, "id"),
    ({"key": 5, "json_value": False}, "key"),
])
def test_bad_values_are_a_400_and_change_nothing(client, make, body, field):
    response = client.patch(URL, headers=token_headers(make.user(role="admin")), json=body)
    assert response.status_code == 400
    assert response.json["field"] == field
    assert otp_setting().json_value is True


def test_id_and_key_of_different_settings_are_refused(client, make):
    headers = token_headers(make.user(role="admin"))
    setting_id = otp_setting().id
    response = client.patch(URL, headers=headers, json={"id": setting_id, "key": "ORDER_FILTERING",
                                                        "json_value": False})
    assert response.status_code == 400
    assert response.json["field"] == "key"
    url_mismatch = client.patch(f"{URL}{setting_id}/", headers=headers, json={"id": setting_id + 1,
                                                                              "json_value": False})
    assert url_mismatch.status_code == 400
    assert otp_setting().json_value is True


def test_an_unknown_setting_id_is_a_404(client, make):
    headers = token_headers(make.user(role="admin"))
    assert client.get(f"{URL}9999/", headers=headers).status_code == 404
    response = client.patch(f"{URL}9999/", headers=headers, json={"json_value": False})
    assert response.status_code == 404
    assert response.json["code"] == "not_found"
    assert client.patch(URL, headers=headers, json={"id": 9999, "json_value": False}).status_code == 404


@pytest.mark.parametrize("role", ["staff", "brand_manager"])
def test_only_admins_touch_settings(client, make, role):
    headers = token_headers(make.user(role=role))
    setting_id = otp_setting().id
    for response in (client.get(URL, headers=headers), client.get(f"{URL}{setting_id}/", headers=headers),
                     client.patch(URL, headers=headers, json={"key": "IS_OTP_ENABLED", "json_value": False}),
                     client.patch(f"{URL}{setting_id}/", headers=headers, json={"json_value": False})):
        assert response.status_code == 403
        assert response.json["code"] == "permission_denied"
    assert otp_setting().json_value is True


@pytest.mark.parametrize("key, value, field", [
    ("OMNITRON_CLIENT_SETTINGS", {"auth": {"username": "", "password": "x" * 12}}, "json_value.auth.username"),
    ("ORDER_FILTERING", {"statuses": ["lost"]}, "json_value.statuses"),
    ("GEOLOCATION_DISCOVERY", {"provider": "bing", "api_key": "k"}, "json_value.provider"),
])
def test_errors_inside_a_value_name_the_field_by_its_place_in_the_body(client, make, key, value, field):
    response = client.patch(URL, headers=token_headers(make.user(role="admin")),
                            json={"key": key, "json_value": value})
    assert response.status_code == 400 and response.json["field"] == field
