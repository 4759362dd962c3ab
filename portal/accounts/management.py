"""User administration for admins (setup step 2): create, edit, activate/deactivate, reset a password.

Every function validates first and changes nothing when it raises ValidationFailed or NotFound.
The portal must always keep one active admin: nobody may deactivate themself, and the last active
admin can be neither deactivated nor demoted. Each change writes an audit row (never a password).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from portal.accounts import auth
from portal.accounts.models import Role, User, user_stock_locations
from portal.errors import NotFound, ValidationFailed
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.stores.models import StockLocation

AUDIT_AREA = "user"
STEP_KEY = "users"
ROLE_CHOICES = [(role.value, role.label) for role in Role]
MIN_PASSWORD = 8


@dataclass
class UserInput:
    """What the create and edit forms send, parsed but not yet checked."""

    full_name: str
    role: str
    store_ids: list[int]
    username: str = ""
    password: str = ""

    @classmethod
    def from_form(cls, form) -> UserInput:
        """Read a submitted form (a werkzeug MultiDict or a plain dict)."""
        raw_ids = form.getlist("stores") if hasattr(form, "getlist") else form.get("stores", [])
        store_ids = []
        for raw in raw_ids:
            try:
                store_ids.append(int(raw))
            except (TypeError, ValueError):
                raise ValidationFailed(_("Choose stores from the list."), field="stores") from None
        return cls(full_name=str(form.get("full_name") or "").strip(), role=str(form.get("role") or ""),
                   store_ids=store_ids, username=str(form.get("username") or "").strip(),
                   password=str(form.get("password") or ""))


def list_users(session: Session) -> list[User]:
    """Every user, admins first, then by username."""
    order = {Role.ADMIN.value: 0, Role.BRAND_MANAGER.value: 1, Role.STAFF.value: 2}
    users = list(session.scalars(select(User).order_by(User.username)))
    return sorted(users, key=lambda u: (order.get(u.role, 9), u.username))


def list_stores(session: Session) -> list[StockLocation]:
    """Active stores an admin can assign staff to, by name."""
    return list(session.scalars(
        select(StockLocation).where(StockLocation.is_active.is_(True)).order_by(StockLocation.name)))


def get_user(session: Session, user_id: int) -> User:
    """One user. Raises NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such user."))
    return user


def _check_role(role: str) -> str:
    """The role if known. Raises ValidationFailed."""
    if role not in {r.value for r in Role}:
        raise ValidationFailed(_("Choose a role: admin, brand manager or store staff."), field="role")
    return role


def _check_full_name(full_name: str) -> str:
    """A name of at most 120 characters. Raises ValidationFailed."""
    if len(full_name) > 120:
        raise ValidationFailed(_("The name is too long (at most 120 characters)."), field="full_name")
    return full_name


def _stores(session: Session, role: str, store_ids: list[int]) -> list[StockLocation]:
    """The chosen stores; staff need at least one. Raises ValidationFailed."""
    wanted = sorted(set(store_ids))
    stores = list(session.scalars(select(StockLocation).where(StockLocation.id.in_(wanted)))) if wanted else []
    if len(stores) != len(wanted):
        raise ValidationFailed(_("One of the chosen stores no longer exists."), field="stores")
    if role == Role.STAFF.value and not stores:
        raise ValidationFailed(_("Store staff need at least one store."), field="stores")
    return stores


def _check_password(password: str) -> str:
    """A password of at least MIN_PASSWORD characters. Raises ValidationFailed."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(_("The password must be at least %(num)s characters.", num=MIN_PASSWORD),
                               field="password")
    if len(password) > 200:
        raise ValidationFailed(_("The password is too long (at most 200 characters)."), field="password")
    return password


def _other_active_admins(session: Session, user_id: int) -> int:
    """How many active admins there are besides this user (their rows locked where the database can)."""
    ids = session.scalars(
        select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != user_id)
        .with_for_update()
    ).all()
    return len(ids)


def create_user(session: Session, data: UserInput, *, actor_id: int | None) -> User:
    """Create a user with a role, stores and a first password. Raises ValidationFailed."""
    if not data.username:
        raise ValidationFailed(_("Username is required."), field="username")
    if len(data.username) > 80 or any(ch.isspace() for ch in data.username):
        raise ValidationFailed(_("The username must be one word of at most 80 characters."), field="username")
    if session.scalar(select(User.id).where(User.username == data.username)):
        raise ValidationFailed(_("The username %(username)r is taken.", username=data.username), field="username")
    role = _check_role(data.role)
    full_name = _check_full_name(data.full_name)
    stores = _stores(session, role, data.store_ids)
    _check_password(data.password)
    # Added before create_user() so that its commit writes the user and the audit row together.
    settings.audit(session, data.username, user_id=actor_id, area=AUDIT_AREA, action="create")
    try:
        user = auth.create_user(session, data.username, data.password, role, [s.erp_code for s in stores],
                                full_name=full_name)
    except ValidationFailed:
        session.rollback()
        raise
    refresh_step(session, user_id=actor_id)
    session.commit()
    return user


def _apply_update(session: Session, user: User, data: UserInput, *, actor_id: int | None) -> None:
    """Check and apply a new name, role and stores, with an audit row (not committed). Raises ValidationFailed."""
    role = _check_role(data.role)
    full_name = _check_full_name(data.full_name)
    stores = _stores(session, role, data.store_ids)
    if user.role == Role.ADMIN.value and role != Role.ADMIN.value and user.active \
            and _other_active_admins(session, user.id) == 0:
        raise ValidationFailed(_("%(username)s is the last active admin; make someone else an admin first.",
                                 username=user.username), field="role")
    user.full_name = full_name
    user.role = role
    user.stock_locations = stores
    settings.audit(session, user.username, user_id=actor_id, area=AUDIT_AREA, action="update")


def _apply_active(session: Session, user: User, active: bool, *, actor_id: int | None) -> None:
    """Check and apply (de)activation, with an audit row when it changes (not committed). Raises ValidationFailed."""
    if not active:
        if user.id == actor_id:
            raise ValidationFailed(_("You cannot deactivate your own account."), field="active")
        if user.role == Role.ADMIN.value and user.active and _other_active_admins(session, user.id) == 0:
            raise ValidationFailed(_("%(username)s is the last active admin and must stay active.",
                                     username=user.username), field="active")
    if user.role == Role.STAFF.value and active and not user.stock_locations:
        raise ValidationFailed(_("Give %(username)s a store before activating them.", username=user.username),
                               field="stores")
    if user.active != active:
        user.active = active
        if not active:
            auth.end_all_login_sessions(session, user.id)
        settings.audit(session, user.username, user_id=actor_id, area=AUDIT_AREA,
                       action="activate" if active else "deactivate")


def change_user(session: Session, user_id: int, data: UserInput | None = None, active: bool | None = None, *,
                actor_id: int | None) -> User:
    """Change a user's name, role and stores (data) and/or activate or deactivate them, all or nothing.

    The rules of update_user and set_active hold. Raises NotFound or ValidationFailed; nothing is
    changed then.
    """
    user = get_user(session, user_id)
    try:
        if data is not None:
            _apply_update(session, user, data, actor_id=actor_id)
        if active is not None:
            _apply_active(session, user, active, actor_id=actor_id)
    except ValidationFailed:
        session.rollback()  # also lets go of the admin rows locked while counting
        raise
    refresh_step(session, user_id=actor_id)
    session.commit()
    return user


def update_user(session: Session, user_id: int, data: UserInput, *, actor_id: int | None) -> User:
    """Change a user's name, role and stores; the last active admin cannot be demoted.

    Raises NotFound or ValidationFailed.
    """
    return change_user(session, user_id, data, actor_id=actor_id)


def set_active(session: Session, user_id: int, active: bool, *, actor_id: int | None) -> User:
    """Activate or deactivate a user. Nobody deactivates themself, and the last active admin stays.

    Raises NotFound or ValidationFailed.
    """
    return change_user(session, user_id, active=active, actor_id=actor_id)


def reset_password(session: Session, user_id: int, password: str, *, actor_id: int | None) -> User:
    """Set a new password chosen by an admin; clears failed logins and any lock, and ends the user's sessions
    and API tokens (whoever knew the old password may have made them).

    Raises NotFound or ValidationFailed.
    """
    user = get_user(session, user_id)
    _check_password(password)
    user.password_hash = auth.hash_password(password)
    auth.clear_login_lock(session, user.username)
    auth.end_all_login_sessions(session, user.id)
    auth.revoke_all_api_tokens(session, user.id)
    settings.audit(session, user.username, user_id=actor_id, area=AUDIT_AREA, action="reset_password")
    refresh_step(session, user_id=actor_id)
    session.commit()
    return user


def _session_of(user: User) -> Session:
    """The session the user row was loaded in."""
    session = object_session(user)
    assert session is not None, "a user loaded from the database"
    return session


def locked_until(user: User) -> datetime | None:
    """Until when too many failed logins keep the account locked (None: not locked now)."""
    return auth.login_lock(_session_of(user), user.username)


def is_locked(user: User) -> bool:
    """True while too many failed logins keep the account locked."""
    return locked_until(user) is not None


def failed_logins(user: User) -> int:
    """Failed logins for the account since its last success or lock."""
    return auth.recent_login_failures(_session_of(user), user.username)


def step_check(session: Session) -> tuple[bool, str]:
    """Step 2 is done with an active admin and an active staff member who has a store; else say what is missing."""
    admins = session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN.value, User.active.is_(True))) or 0
    staff = session.scalar(
        select(func.count(func.distinct(User.id))).select_from(User)
        .join(user_stock_locations, user_stock_locations.c.user_id == User.id)
        .where(User.role == Role.STAFF.value, User.active.is_(True))) or 0
    if not admins and not staff:
        return False, _("Still needed: an active admin and an active store staff member with a store.")
    if not admins:
        return False, _("Still needed: an active admin.")
    if not staff:
        return False, _("Still needed: an active store staff member with a store.")
    return True, _("%(admins)s active admin(s) and %(staff)s active store staff with stores.", admins=admins,
                   staff=staff)


def refresh_step(session: Session, *, user_id: int | None) -> tuple[bool, str]:
    """Bring step 2 in line with the users as they are (not committed); returns its check.

    Every change to users here calls it, so the wizard's page and the API settle the step the same way.
    """
    session.flush()
    ok, note = step_check(session)
    wizard.settle(session, STEP_KEY, ok, user_id=user_id, note=note)
    return ok, note
