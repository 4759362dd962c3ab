"""Passwords, login throttling per account, users and API tokens."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import ApiToken, Role, User
from portal.db_types import utcnow
from portal.errors import RateLimited, ValidationFailed
from portal.extensions import db
from portal.i18n import N_, supported
from portal.stores.models import StockLocation

GENERIC_LOGIN_ERROR = N_("Wrong username or password.")  # translated where it is raised
_HASHERS: dict[tuple, tuple[PasswordHasher, str]] = {}


def _hasher_and_dummy() -> tuple[PasswordHasher, str]:
    """The Argon2id hasher at the configured cost, and a hash of a dummy password made with it.

    The library's recommended cost unless the config sets ARGON2_* (only TestingConfig does, so the
    test suite stays quick). The dummy hash is verified when a username is unknown, so a miss costs as
    much time as a wrong password.
    """
    config = current_app.config if has_app_context() else {}
    key = tuple(config.get(name) for name in ("ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM"))
    if key not in _HASHERS:
        time_cost, memory_cost, parallelism = key  # None: the library's recommended value
        hasher = PasswordHasher(time_cost=int(time_cost or DEFAULT_TIME_COST),
                                memory_cost=int(memory_cost or DEFAULT_MEMORY_COST),
                                parallelism=int(parallelism or DEFAULT_PARALLELISM))
        _HASHERS[key] = (hasher, hasher.hash("not-a-real-password"))
    return _HASHERS[key]


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher_and_dummy()[0].hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the stored hash."""
    try:
        return _hasher_and_dummy()[0].verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def init_login_manager(login_manager) -> None:
    """Teach Flask-Login how to load users and where the login page is."""
    login_manager.login_view = "auth.login"
    # Flashed into the session, so a plain string translated per request, not a lazy one.
    login_manager.login_message = N_("Please log in to continue.")
    login_manager.localize_callback = _
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(session_id: str):
        """Load the logged-in user, or None when deactivated, gone, or their password changed since login."""
        user_id, _, stamp = str(session_id).partition(".")
        if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 18:
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active:
            return None
        return user if hmac.compare_digest(stamp.encode(), user.session_stamp().encode()) else None


def authenticate(session: Session, username: str, password: str) -> User:
    """Check a login. Raises ValidationFailed for a wrong login and RateLimited while the account is locked.

    Failures are counted per account: after LOGIN_MAX_FAILURES in a row the account is locked for
    LOGIN_LOCK_MINUTES, whoever is trying, so guessing from many addresses does not help.
    """
    config = current_app.config
    user = session.scalar(select(User).where(User.username == username.strip()))
    now = utcnow()
    if user is None:
        verify_password(_hasher_and_dummy()[1], password)
        raise ValidationFailed(_(GENERIC_LOGIN_ERROR))
    if user.locked_until and user.locked_until > now:
        raise RateLimited(_("Too many failed logins for this account. Try again in a few minutes."))
    if not verify_password(user.password_hash, password) or not user.active:
        user.failed_logins += 1
        if user.failed_logins >= config["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
            user.failed_logins = 0
        session.commit()
        raise ValidationFailed(_(GENERIC_LOGIN_ERROR))
    user.failed_logins = 0
    user.locked_until = None
    if _hasher_and_dummy()[0].check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.commit()
    return user


def create_user(
    session: Session, username: str, password: str, role: str, store_codes: list[str] | None = None,
    full_name: str = "",
) -> User:
    """Create a user; staff must belong to at least one store. Raises ValidationFailed."""
    username = username.strip()
    if not username:
        raise ValidationFailed(_("Username is required."), field="username")
    if role not in {r.value for r in Role}:
        raise ValidationFailed(_("Unknown role %(role)r; use one of: admin, brand_manager, staff.", role=role),
                               field="role")
    if len(password) < 8:
        raise ValidationFailed(_("Password must be at least 8 characters."), field="password")
    if session.scalar(select(User).where(User.username == username)):
        raise ValidationFailed(_("User %(username)r already exists.", username=username), field="username")
    stores = []
    for code in store_codes or []:
        store = session.scalar(select(StockLocation).where(StockLocation.erp_code == code))
        if store is None:
            raise ValidationFailed(_("No store with ERP code %(code)r.", code=code), field="store")
        stores.append(store)
    if role == Role.STAFF.value and not stores:
        raise ValidationFailed(_("Store staff need at least one store (--store ERP_CODE)."), field="store")
    user = User(username=username, password_hash=hash_password(password), role=role, full_name=full_name)
    user.stock_locations = stores
    session.add(user)
    session.commit()
    return user


def _digest(key: str) -> str:
    """SHA-256 of an API key; keys are long and random, so a plain digest is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_token(session: Session, user: User) -> str:
    """Create an API token for the user and return the key; only its digest is kept."""
    key = secrets.token_urlsafe(32)
    session.add(ApiToken(user=user, prefix=key[:8], key_digest=_digest(key)))
    session.commit()
    return key


def revoke_api_token(session: Session, user: User, token_id: int) -> None:
    """Revoke one of the user's tokens."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise ValidationFailed(_("No such token."))
    token.revoked = True
    session.commit()


def user_for_token(session: Session, key: str) -> User | None:
    """The active user owning an unrevoked token with this key, or None."""
    token = session.scalar(select(ApiToken).where(ApiToken.key_digest == _digest(key)))
    if token is None or token.revoked or not token.user.active:
        return None
    now = utcnow()
    # Writing on every call would serialise API traffic on one row; a minute's precision is plenty.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
        session.commit()
    return token.user


def set_language(session: Session, user: User, language: str) -> str:
    """Save the language the portal is shown in for the user ("" follows the browser); returns it. Commits.

    Raises ValidationFailed for a language the portal has no catalogue for."""
    code = supported(language) if language else ""
    if code is None:
        raise ValidationFailed(_("The portal is not translated into that language."), field="language")
    user.language = code
    session.commit()
    return code
