"""Who may call what is declared once per operation: admins only unless the operation says otherwise."""
import re

import pytest

from portal.accounts import auth
from portal.api.operations import OPERATIONS, PREFIX, Access, operation
from portal.extensions import db


def url_of(op) -> str:
    """The operation's URL with 1 for every path argument."""
    return PREFIX + re.sub(r"<[^<>]+>", "1", op.path)


def headers_for(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def test_admin_is_the_default_access():
    assert operation.__kwdefaults__["access"] is Access.ADMIN
    admin_only = [op for op in OPERATIONS if op.access is Access.ADMIN]
    assert len(admin_only) > 30
    assert {op.access for op in OPERATIONS} == set(Access)


@pytest.mark.parametrize("role", ["staff", "brand_manager"])
def test_every_admin_operation_refuses_other_roles_before_reading_the_request(client, make, role):
    store = make.store()
    headers = headers_for(make.user(role=role, stores=[store] if role == "staff" else None))
    for op in OPERATIONS:
        refused = op.access is Access.ADMIN or (op.access is Access.MANAGERS and role == "staff")
        response = client.open(url_of(op), method=op.method, headers=headers, data="not json",
                               content_type="application/json")
        if refused:
            assert response.status_code == 403, (op.method, op.path, response.status_code)
            assert response.json["code"] == "permission_denied"
        else:
            assert response.status_code != 403, (op.method, op.path)


def test_every_operation_but_the_document_needs_a_token(client):
    for op in OPERATIONS:
        response = client.open(url_of(op), method=op.method)
        expected = 200 if op.access is Access.PUBLIC else 401
        assert response.status_code == expected, (op.method, op.path)
