"""The API's models validate strictly and name every bad field the way the API spells it."""
from sqlalchemy import func, select

from portal.accounts import auth
from portal.accounts.models import User
from portal.extensions import db
from portal.packages.states import State

API = "/api/v1/oms"


def admin_headers(make) -> dict:
    """An admin's token."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, make.user('root', role='admin'))}"}


def test_every_bad_field_is_listed_and_the_first_is_named(client, make):
    headers = admin_headers(make)
    response = client.post(f"{API}/users/", headers=headers,
                           json={"username": 7, "password": "first-pass-1", "role": "staff", "colour": "red"})
    assert response.status_code == 400
    assert response.json["field"] == "username" and response.json["detail"] == "username must be a string."
    assert response.json["errors"] == [{"field": "username", "detail": "username must be a string."},
                                       {"field": "colour", "detail": "Unknown field 'colour'."}]
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_types_are_strict_numbers_in_strings_and_nulls_are_refused(client, make):
    headers = admin_headers(make)
    package = make.package(state=State.WAITING)
    as_text = client.post(f"{API}/packages/{package.id}/command/", headers=headers, json={"transition": "7"})
    assert as_text.status_code == 400 and as_text.json["field"] == "transition"
    user_id = db.session.scalar(select(User.id))
    nulled = client.patch(f"{API}/users/{user_id}/", headers=headers, json={"full_name": None})
    assert nulled.status_code == 400 and nulled.json["field"] == "full_name"
    flag = client.patch(f"{API}/users/{user_id}/", headers=headers, json={"is_active": 1})
    assert flag.status_code == 400 and flag.json["detail"] == "is_active must be true or false."


def test_query_strings_refuse_unknown_arguments_and_explain_bounds(client, make):
    headers = admin_headers(make)
    unknown = client.get(f"{API}/packages/?colour=red", headers=headers)
    assert unknown.status_code == 400 and unknown.json["field"] == "colour"
    zero = client.get(f"{API}/users/?limit=0", headers=headers)
    assert zero.status_code == 400 and zero.json["detail"] == "limit must be at least 1."
    assert client.get(f"{API}/users/?limit=", headers=headers).status_code == 200  # empty means absent


def test_a_union_field_is_named_without_its_type_tags(client, make):
    headers = admin_headers(make)
    response = client.post(f"{API}/transitions/", headers=headers, json={
        "name": "X", "slug": "x-y", "command_code": "SHIP_PACKAGE", "source_state": [500],
        "destination_state": 600, "visibility": ["OMS_WEB"]})
    assert response.status_code == 400
    assert response.json["field"] == "source_state"
    assert [e["field"] for e in response.json["errors"]] == ["source_state"]


def test_a_value_too_large_for_the_database_is_a_json_400(client, make, monkeypatch):
    """Bounded ids keep huge numbers out; should one reach a query anyway, the API answers in its own shape."""
    from portal.api.resources import users

    headers = admin_headers(make)
    assert client.get(f"{API}/users/{10 ** 30}/", headers=headers).status_code == 404  # the router refuses it

    def overflow(session, user_id):
        """What the database driver raises for a number it cannot hold."""
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(users.management, "get_user", overflow)
    response = client.get(f"{API}/users/1/", headers=headers)
    assert response.status_code == 400 and response.is_json
    assert response.json == {"detail": "A value in the request is too large.", "code": "validation_error"}
