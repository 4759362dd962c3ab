"""Users (setup step 2, admins only): roles, stores and passwords; answers never carry a password or its hash."""
from __future__ import annotations

from flask_babel import gettext as _
from pydantic import Field
from sqlalchemy import select

from portal.accounts import management
from portal.accounts.models import Role
from portal.accounts.models import User as UserRow
from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.pagination import PageQuery, keyset_page
from portal.api.schemas import Answer, Body, StockLocation, Timestamp, optional
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.stores.models import StockLocation as StockLocationRow

# Domain field names reported under the API's names.
RENAMES = {"active": "is_active", "store_ids": "stores"}
ROLES = tuple(role.value for role in Role)


class User(Answer):
    """A user as the API shows it: never the password or its hash."""

    id: int
    username: str
    full_name: str
    role: str = Field(json_schema_extra={"enum": list(ROLES)})
    stores: list[StockLocation]
    is_active: bool
    is_locked: bool = Field(description="Locked for a while after too many failed logins; reset_password lifts it.")
    created_at: Timestamp | None

    @classmethod
    def of(cls, user: UserRow) -> User:
        """A user row as the API shows it."""
        return cls(id=user.id, username=user.username, full_name=user.full_name or "", role=user.role,
                   stores=[StockLocation(id=s.id, erp_code=s.erp_code, name=s.name) for s in user.stock_locations],
                   is_active=user.active, is_locked=management.is_locked(user), created_at=user.created_at)


class UserPage(Answer):
    """A page of users in id order."""

    results: list[User]
    next: str | None = Field(json_schema_extra={"format": "uri"}, description="The next page; null on the last.")
    previous: str | None = Field(json_schema_extra={"format": "uri"},
                                 description="The previous page; null on the first.")


class StoreRef(Body):
    """A store as answers show it; its erp_code names it."""

    id: int | None = None
    erp_code: str = Field(max_length=64)
    name: str | None = Field(None, max_length=200)


# Stores in a body: erp_codes, or stores as an answer showed them.
Stores = list[str | StoreRef]


class NewUser(Body):
    """A new user with a role, stores (by erp_code) and a first password."""

    username: str = Field(max_length=150)
    password: str = Field(max_length=200)
    full_name: str = Field("", max_length=200)
    role: str = Field(max_length=64, json_schema_extra={"enum": list(ROLES)})
    stores: Stores = Field([], description="Store erp_codes (store staff need at least one).")


class UserPatch(Body):
    """Fields to change, all or nothing; the read-only fields of an answer may be sent back."""

    full_name: str = optional(max_length=200)
    role: str = optional(max_length=64, json_schema_extra={"enum": list(ROLES)})
    stores: Stores = optional()
    is_active: bool = optional()
    id: int | None = Field(None, json_schema_extra={"readOnly": True})
    username: str | None = Field(None, json_schema_extra={"readOnly": True})
    is_locked: bool | None = Field(None, json_schema_extra={"readOnly": True})
    created_at: str | None = Field(None, json_schema_extra={"readOnly": True})


class NewPassword(Body):
    """A new password chosen by the admin."""

    password: str = Field(max_length=200)


def _store_ids(stores: Stores) -> list[int]:
    """Store ids for erp_codes; raises ValidationFailed naming an unknown one."""
    codes = [item.erp_code if isinstance(item, StoreRef) else item for item in stores]
    wanted = set(codes)
    found = dict(db.session.execute(select(StockLocationRow.erp_code, StockLocationRow.id)
                                    .where(StockLocationRow.erp_code.in_(wanted))).tuples().all()) if wanted else {}
    missing = sorted(wanted - set(found))
    if missing:
        raise ValidationFailed(_("Unknown store erp_code %(code)r.", code=missing[0]), field="stores")
    return [found[code] for code in dict.fromkeys(codes)]


@operation("GET", "/oms/users/", summary="Users in id order, page by page (admins only).", query=PageQuery,
           answer=UserPage, tag="users")
def list_users(query: PageQuery):
    """A page of users in id order, with links to the neighbouring pages."""
    rows, next_url, previous_url = keyset_page(db.session, select(UserRow), UserRow.id, query, newest_first=False,
                                               endpoint="api.list_users")
    return UserPage(results=[User.of(u) for u in rows], next=next_url, previous=previous_url)


@operation("POST", "/oms/users/", summary="Create a user (admins only).", body=NewUser, answer=User, status=201,
           renames=RENAMES, tag="users",
           example={"username": "kadikoy-1", "password": "first-pass-1", "full_name": "Ayse", "role": "staff",
                    "stores": ["IST-KDK"]})
def create_user(body: NewUser):
    """Create a user with a role, stores (by erp_code) and a first password."""
    data = management.UserInput(full_name=body.full_name.strip(), role=body.role, store_ids=_store_ids(body.stores),
                                username=body.username.strip(), password=body.password)
    user = management.create_user(db.session, data, actor_id=caller().user_id)
    return User.of(user)


@operation("GET", "/oms/users/<int:user_id>/", summary="One user (admins only).", answer=User, errors=("404",),
           tag="users")
def show_user(user_id: int):
    """One user."""
    return User.of(management.get_user(db.session, user_id))


@operation("PATCH", "/oms/users/<int:user_id>/", body=UserPatch, answer=User, errors=("404",), renames=RENAMES,
           tag="users", summary="Change a user's full_name, role, stores and/or is_active (admins only).",
           description="All or nothing. Read-only fields sent back (id, username, is_locked, created_at) are ignored.")
def update_user(user_id: int, body: UserPatch):
    """Change a user's full_name, role, stores and/or is_active, all or nothing."""
    user = management.get_user(db.session, user_id)
    sent = body.model_fields_set
    data = None
    if {"full_name", "role", "stores"} & sent:
        data = management.UserInput(
            full_name=(body.full_name if "full_name" in sent else user.full_name or "").strip(),
            role=body.role if "role" in sent else user.role,
            store_ids=_store_ids(body.stores) if "stores" in sent else user.store_ids)
    active = body.is_active if "is_active" in sent else None
    user = management.change_user(db.session, user_id, data, active, actor_id=caller().user_id)
    return User.of(user)


@operation("POST", "/oms/users/<int:user_id>/reset_password/", body=NewPassword, answer=User, errors=("404",),
           tag="users", summary="Set a new password; any login lock is lifted, and the user's sessions and API tokens end "
                   "(admins only).")
def reset_user_password(user_id: int, body: NewPassword):
    """Set a new password chosen by the admin, as the wizard does."""
    return User.of(management.reset_password(db.session, user_id, body.password, actor_id=caller().user_id))
