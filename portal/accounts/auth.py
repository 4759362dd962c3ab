"""Passwords, login throttling per account, users and API tokens."""
from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeGuard

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from flask import session as flask_session
from flask_babel import gettext as _
from sqlalchemy import bindparam, case, delete, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from portal.accounts.models import (
    ApiToken,
    LoginDevice,
    LoginSession,
    LoginThrottle,
    Role,
    User,
    user_stock_locations,
)
from portal.config import Config
from portal.db_types import UTCDateTime, rowcount, utcnow
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.i18n import N_, supported
from portal.stores.models import StockLocation

# Translated where it is raised. The same for a locked account and an unknown name, so it reveals neither.
GENERIC_LOGIN_ERROR = N_("Wrong username or password. After several wrong tries the account is locked for a few "
                         "minutes.")
SESSION_KEY = "login_session"  # the signed session cookie's entry naming the LoginSession
DEVICE_COOKIE = "portal_device"  # the cookie naming a remembered login device (see LoginDevice)
_HASHERS: dict[tuple, tuple[PasswordHasher, str]] = {}
_CHECKS: dict[int, threading.BoundedSemaphore] = {}  # ARGON2_CONCURRENCY -> this process's turnstile
_CHECKS_LOCK = threading.Lock()


def _check_turns() -> threading.BoundedSemaphore:
    """This process's turnstile for Argon2id checks: at most ARGON2_CONCURRENCY of them run at once.

    A check is ~35 ms of one core over 19 MiB of memory, in C with the GIL released, so every thread of a
    gthread worker could run one at once. At a shift-start login storm that time-slices a dozen checks over two
    cores: each finishes as late as the last one, and the other requests' threads starve meanwhile. Taking
    turns finishes the first logins in 35 ms instead, and leaves the other cores' time to the other requests.
    """
    config = current_app.config if has_app_context() else vars(Config)
    limit = max(1, int(config.get("ARGON2_CONCURRENCY", 1)))
    with _CHECKS_LOCK:
        if limit not in _CHECKS:
            _CHECKS[limit] = threading.BoundedSemaphore(limit)
        return _CHECKS[limit]


def _hasher_and_dummy() -> tuple[PasswordHasher, str]:
    """The Argon2id hasher at the configured cost, and a hash of a dummy password made with it.

    The cost is the config's ARGON2_* (OWASP's recommended Argon2id setting unless the environment says
    otherwise; TestingConfig makes it trivial so the suite stays quick). The dummy hash is verified when a
    username is unknown, so a miss costs as much time as a wrong password.
    """
    config = current_app.config if has_app_context() else vars(Config)
    key = tuple(int(config[name]) for name in ("ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM"))
    if key not in _HASHERS:
        time_cost, memory_cost, parallelism = key
        hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        _HASHERS[key] = (hasher, hasher.hash("not-a-real-password"))
    return _HASHERS[key]


def hash_password(password: str) -> str:
    """Argon2id hash of a password (taking its turn: see _check_turns)."""
    hasher = _hasher_and_dummy()[0]
    with _check_turns():
        return hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the stored hash (taking its turn: see _check_turns)."""
    hasher = _hasher_and_dummy()[0]
    try:
        with _check_turns():
            return hasher.verify(password_hash, password)
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
        """Load the logged-in user, or None when logged out, deactivated, gone, or their password changed since login."""
        user_id, _, stamp = str(session_id).partition(".")
        if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 18:
            return None
        user = user_for_session(db.session, int(user_id), flask_session.get(SESSION_KEY))
        if user is None:
            return None
        return user if hmac.compare_digest(stamp.encode(), user.session_stamp().encode()) else None


def _throttle_key(username: str) -> str:
    """The login_throttles key of a typed username: its SHA-256, so typed text is not kept."""
    return hashlib.sha256(username.encode()).hexdigest()


def _upsert(session: Session):
    """The INSERT construct with ON CONFLICT support for this session's database."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _not_locked(now: datetime):
    """SQL condition: no lock is in force on the throttle row."""
    return or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now)


def _slots_taken(now: datetime):
    """SQL expression: the row's slots in flight, counting none when the last was taken or given back too long ago.

    A process that dies in the middle of a check never gives its slot back; after LOGIN_IN_FLIGHT_STALE_SECONDS
    without a slot taken or given back, the slots are taken to be such leftovers.
    """
    stale_before = now - timedelta(seconds=float(current_app.config["LOGIN_IN_FLIGHT_STALE_SECONDS"]))
    table = LoginThrottle.__table__
    fresh = table.c.in_flight_at.is_not(None) & (table.c.in_flight_at >= stale_before)
    return case((fresh, table.c.in_flight), else_=0)


def _give_back_slot(now: datetime):
    """SQL expression: the row's slots in flight less the one this attempt gives back (never below 0)."""
    taken = _slots_taken(now)
    return case((taken > 0, taken - 1), else_=0)


def _reserve_slot(session: Session, key: str, now: datetime) -> bool:
    """Take a slot for checking this attempt's password, in one atomic statement; False when none is free.

    A slot is free while no lock is in force and the failures counted plus the slots taken stay below
    LOGIN_MAX_FAILURES. Taking it before the (slow) check is what makes the limit hold under concurrency: of any
    number of attempts sent at once, at most LOGIN_MAX_FAILURES get their password checked before a lock, and
    a slot given back after a right password is not a failure.
    """
    table = LoginThrottle.__table__
    insert = _upsert(session)(table).values(key=key, failures=0, in_flight=1, in_flight_at=now, locked_until=None,
                                            updated_at=now)
    taken = _slots_taken(now)
    locked = table.c.locked_until.is_not(None) & (table.c.locked_until > now)
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"in_flight": taken + 1, "in_flight_at": now, "updated_at": now},
        where=~locked & (table.c.failures + taken < current_app.config["LOGIN_MAX_FAILURES"]),
    ).returning(table.c.key)
    return session.execute(stmt).first() is not None


def _locked_now(session: Session, key: str, now: datetime) -> bool:
    """True when a lock is in force on the typed username."""
    locked_until = session.scalar(select(LoginThrottle.locked_until).where(LoginThrottle.key == key))
    return locked_until is not None and locked_until > now


def _wait_for_slot(session: Session, key: str, password: str) -> None:
    """Take a slot for this attempt, waiting while the others are busy; raises the refusal when none comes.

    Committed either way. While a lock is in force the refusal comes at once (after a dummy check, so it takes
    as long as a checked password). While the slots are only busy with checks in flight (a store's tablets
    logging in together with its one account), the attempt tries again every few tens of milliseconds for
    LOGIN_BUSY_WAIT_SECONDS, then gets the same refusal.
    """
    deadline = time.monotonic() + float(current_app.config["LOGIN_BUSY_WAIT_SECONDS"])
    while True:
        now = utcnow()
        if _reserve_slot(session, key, now):
            session.commit()  # taken before the (slow) check, so concurrent attempts see it
            return
        locked = _locked_now(session, key, now)
        session.commit()  # nothing is held while waiting
        if locked:
            verify_password(_hasher_and_dummy()[1], password)  # the same time as a checked password
            raise _refused()
        left = deadline - time.monotonic()
        if left <= 0:
            # No dummy check: the wait took far longer than any check, and slots are taken per typed name,
            # known or not, so this answer tells nothing about the account either.
            raise _refused()
        time.sleep(min(left, random.uniform(0.02, 0.05)))  # jittered, so waiters do not retry in step


def _count_failure(session: Session, key: str, now: datetime) -> None:
    """Give back the slot and count a failure, in one statement; the LOGIN_MAX_FAILURES-th locks the username.

    Locking starts counting afresh (failures 0) for when the lock of LOGIN_LOCK_MINUTES ends. A failure that ends
    while a lock is in force is not counted again.
    """
    table = LoginThrottle.__table__
    locked = table.c.locked_until.is_not(None) & (table.c.locked_until > now)
    reaches = table.c.failures + 1 >= current_app.config["LOGIN_MAX_FAILURES"]
    lock_until = literal(now + timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"]), UTCDateTime())
    session.execute(
        update(LoginThrottle).where(LoginThrottle.key == key)
        .values(failures=case((locked, table.c.failures), (reaches, 0), else_=table.c.failures + 1),
                locked_until=case((locked, table.c.locked_until), (reaches, lock_until), else_=table.c.locked_until),
                in_flight=_give_back_slot(now), in_flight_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _count_success(session: Session, key: str, now: datetime) -> bool:
    """Give back the slot and forget the failures after a right password; False when a lock came into force
    meanwhile (then only the slot is given back, and the login is refused)."""
    result = session.execute(
        update(LoginThrottle).where(LoginThrottle.key == key, _not_locked(now))
        .values(failures=0, locked_until=None, in_flight=_give_back_slot(now), in_flight_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) == 1:
        return True
    _give_back(session, key, now)
    return False


def _give_back(session: Session, key: str, now: datetime) -> None:
    """Give back the slot without counting anything (a lock came first, or the check itself broke)."""
    session.execute(
        update(LoginThrottle).where(LoginThrottle.key == key)
        .values(in_flight=_give_back_slot(now), in_flight_at=now)
        .execution_options(synchronize_session=False)
    )


def _forget_old_throttles(session: Session, now: datetime) -> None:
    """Delete throttle rows untouched for a day (typos and unknown names would otherwise pile up)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < now - timedelta(days=1), _not_locked(now)))


def _refused() -> ValidationFailed:
    """The one answer for a wrong password, an unknown username, a deactivated account and a locked one."""
    return ValidationFailed(_(GENERIC_LOGIN_ERROR))


def authenticate(session: Session, username: str, password: str) -> User:
    """Check a login and commit. Raises ValidationFailed for any refused login, whatever the reason.

    See _check_login for the rules.
    """
    user, _fast = _check_login(session, username, password)
    session.commit()
    return user


@dataclass
class LoggedIn:
    """A good login: the user, its login session's key, and the device key to keep in the device cookie (None:
    remembering devices is off)."""

    user: User
    session_key: str
    device_key: str | None


def log_in(session: Session, username: str, password: str, device_key: str | None = None) -> LoggedIn:
    """Check a login and record the new logged-in browser; returns the user and the login session's key.

    The same checks as authenticate(); a good login's throttle reset and its LoginSession are written in one
    transaction, so a login costs two commits (the attempt counted, then the success), not three. device_key is
    the browser's device cookie, if any: on a device where this user logged in before (within LOGIN_DEVICE_DAYS),
    the password is checked with a keyed HMAC instead of Argon2id (see LoginDevice); any other good login
    remembers the device for next time.
    """
    user, fast = _check_login(session, username, password, device_key)
    key = start_login_session(session, user, commit=False)
    device = _remember_device(session, user, password, device_key, fast)
    session.commit()
    return LoggedIn(user, key, device)


def _device_digest(device_key: str) -> str:
    """SHA-256 of a device key (what login_devices stores)."""
    return hashlib.sha256(device_key.encode()).hexdigest()


def _device_verifier(device_key: str, password: str) -> str:
    """HMAC-SHA256 of the password under a key made of the device key and SECRET_KEY: it can be checked only by
    someone holding both the cookie and the server's secret."""
    return hmac.new(hashlib.sha256(f"login-device:{current_app.config['SECRET_KEY']}:{device_key}".encode()).digest(),
                    password.encode(), hashlib.sha256).hexdigest()


def _usable_device_key(device_key: str | None) -> TypeGuard[str]:
    """A device cookie worth looking up: present, of a sane length, and remembering devices is on."""
    return device_key is not None and 0 < len(device_key) <= 100 and int(current_app.config["LOGIN_DEVICE_DAYS"]) > 0


def _device_matches(session: Session, user_id: int, device_key: str | None, password: str) -> bool:
    """True when this browser is a live remembered device of the user and the password is the one it last logged
    in with (compared in constant time). Read after the attempt's slot is taken, so a password reset that forgot
    the device before is seen."""
    if not _usable_device_key(device_key):
        return False
    verifier = session.scalar(
        select(LoginDevice.verifier).where(LoginDevice.device_digest == _device_digest(device_key),
                                           LoginDevice.user_id == user_id, LoginDevice.expires_at > utcnow()))
    return verifier is not None and hmac.compare_digest(verifier, _device_verifier(device_key, password))


def _remember_device(session: Session, user: User, password: str, device_key: str | None,
                     fast: bool) -> str | None:
    """After a good login: extend a remembered device's life (fast: it was used), else remember this browser for
    the user with a new verifier; not committed. Returns the device key for the cookie (None: the feature is off).
    """
    days = int(current_app.config["LOGIN_DEVICE_DAYS"])
    if days <= 0:
        return None
    now = utcnow()
    expires = now + timedelta(days=days)
    if fast and device_key:
        session.execute(update(LoginDevice).where(LoginDevice.device_digest == _device_digest(device_key),
                                                  LoginDevice.user_id == user.id)
                        .values(last_used_at=now, expires_at=expires).execution_options(synchronize_session=False))
        return device_key
    if not _usable_device_key(device_key) or session.scalar(
            select(LoginDevice.id).where(LoginDevice.device_digest == _device_digest(device_key)).limit(1)) is None:
        device_key = secrets.token_urlsafe(32)  # a key this server never issued (or forgot) is not kept
    verifier = _device_verifier(device_key, password)
    table = LoginDevice.__table__
    session.execute(  # one statement, so a login sent twice at once from one tablet cannot collide
        _upsert(session)(table)
        .values(device_digest=_device_digest(device_key), user_id=user.id, verifier=verifier, created_at=now,
                last_used_at=now, expires_at=expires)
        .on_conflict_do_update(index_elements=[table.c.device_digest, table.c.user_id],
                               set_={"verifier": verifier, "last_used_at": now, "expires_at": expires}))
    if secrets.randbelow(100) == 0:
        session.execute(delete(LoginDevice).where(LoginDevice.expires_at <= now))
    return device_key


def forget_devices(session: Session, user_id: int) -> int:
    """Forget every remembered login device of the user (password reset, deactivation); not committed."""
    return rowcount(session.execute(delete(LoginDevice).where(LoginDevice.user_id == user_id)))


def _check_login(session: Session, username: str, password: str,
                 device_key: str | None = None) -> tuple[User, bool]:
    """Check a login; a good one's writes are left uncommitted. Raises ValidationFailed for any refused login.
    Returns the user, and whether the password was checked on a remembered device (a keyed HMAC, not Argon2id).

    Attempts are counted per typed username, known or not: each takes one of LOGIN_MAX_FAILURES slots (less
    the failures so far) before its password is checked, waiting for one while the others are busy (see
    _wait_for_slot). After LOGIN_MAX_FAILURES failures in a row the username is locked for LOGIN_LOCK_MINUTES,
    whoever is trying, so guessing from many addresses or many connections at once does not help, while right
    passwords sent at once (a store's tablets sharing one account) all log in. A locked account, an unknown
    username and a wrong password get the same answer, so the answer tells nobody which accounts exist.
    """
    typed = username.strip()
    key = _throttle_key(typed)
    _wait_for_slot(session, key, password)
    try:
        user = session.scalar(select(User).where(User.username == typed))
        fast = False
        if user is None:
            verify_password(_hasher_and_dummy()[1], password)  # the same time as a checked password
            ok = False
        else:
            fast = _device_matches(session, user.id, device_key, password)
            ok = (fast or verify_password(user.password_hash, password)) and user.active
    except BaseException:
        _give_back_after_error(session, key)
        raise
    if not ok:
        _count_failure(session, key, utcnow())
        if secrets.randbelow(100) == 0:
            _forget_old_throttles(session, utcnow())
        session.commit()
        raise _refused()
    assert user is not None
    # Re-made before the throttle row is written: its lock (and, on SQLite, the database's) is held until commit.
    rehashed = hash_password(password) if not fast and _hasher_and_dummy()[0].check_needs_rehash(
        user.password_hash) else None
    if not _count_success(session, key, utcnow()):
        session.commit()
        raise _refused()
    if rehashed is not None:
        user.password_hash = rehashed
    return user, fast


def _give_back_after_error(session: Session, key: str) -> None:
    """Give back the slot of an attempt whose check broke (the database went away, say); quietly, as best it can.

    Should this fail too, the slot counts as free after LOGIN_IN_FLIGHT_STALE_SECONDS.
    """
    try:
        session.rollback()
        _give_back(session, key, utcnow())
        session.commit()
    except Exception:  # the original error is the one to report
        session.rollback()


def login_lock(session: Session, username: str) -> datetime | None:
    """Until when this username is locked after failed logins (None: it is not locked now)."""
    throttle = session.get(LoginThrottle, _throttle_key(username))
    if throttle is None or throttle.locked_until is None or throttle.locked_until <= utcnow():
        return None
    return throttle.locked_until


def recent_login_failures(session: Session, username: str) -> int:
    """Failed logins for this username since the last success or lock."""
    throttle = session.get(LoginThrottle, _throttle_key(username))
    return throttle.failures if throttle is not None else 0


def clear_login_lock(session: Session, username: str) -> None:
    """Forget this username's failed logins and any lock (not committed)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == _throttle_key(username)))


def _session_digest(key: str) -> str:
    """SHA-256 of a login session key."""
    return hashlib.sha256(key.encode()).hexdigest()


def start_login_session(session: Session, user: User, commit: bool = True) -> str:
    """Record a new logged-in browser for the user and return its key (kept in the signed session cookie)."""
    key = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(LoginSession(key_digest=_session_digest(key), user_id=user.id, created_at=now,
                             expires_at=now + timedelta(hours=current_app.config["LOGIN_SESSION_HOURS"])))
    if commit:
        session.commit()
    return key


def end_login_session(session: Session, key: str | None) -> None:
    """End one logged-in browser (logout); a missing or unknown key is fine."""
    if key:
        session.execute(delete(LoginSession).where(LoginSession.key_digest == _session_digest(str(key))))
        session.commit()


def end_all_login_sessions(session: Session, user_id: int) -> int:
    """End every logged-in browser of the user (password reset, deactivation) and forget their remembered devices
    (a device's verifier holds the old password); not committed. Returns how many sessions ended."""
    forget_devices(session, user_id)
    return rowcount(session.execute(delete(LoginSession).where(LoginSession.user_id == user_id)))


def revoke_all_api_tokens(session: Session, user_id: int) -> int:
    """Revoke every API token of the user (password reset); not committed. Returns how many were live."""
    return rowcount(session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked.is_(False)).values(revoked=True)
        .execution_options(synchronize_session=False)
    ))


def user_for_session(session: Session, user_id: int, key: str | None) -> User | None:
    """The active user of a live login session with this key, or None (logged out, expired, or ended)."""
    if not key:
        return None
    return session.scalar(
        select(User).join(LoginSession, LoginSession.user_id == User.id)
        .where(User.id == user_id, User.active.is_(True), LoginSession.key_digest == _session_digest(str(key)),
               LoginSession.expires_at > utcnow())
    )


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


@dataclass(frozen=True)
class TokenOwner:
    """What the API needs of a token's user, read in one query (no User object, no lazy loads)."""

    user_id: int
    role: str
    store_ids: list[int] | None  # None: every store (admins and brand managers)

    @property
    def visibility(self) -> str:
        """Which command visibility the user's screens show (see User.visibility)."""
        return "INSTORE" if self.role == Role.STAFF.value else "OMS_WEB"


def _touch_token(session: Session, token_id: int, last_used_at: datetime | None) -> None:
    """Record that the token was used, at most once a minute per token (commits when it writes).

    Writing on every call would serialise API traffic on one row; a minute's precision is plenty. The
    UPDATE is conditional, so concurrent requests of one token write the row once, not once each.
    """
    now = utcnow()
    if last_used_at is not None and now - last_used_at <= timedelta(minutes=1):
        return
    session.execute(
        update(ApiToken).where(ApiToken.id == token_id,
                               or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - timedelta(minutes=1)))
        .values(last_used_at=now).execution_options(synchronize_session=False))
    session.commit()


# The token's user and that user's stores in one statement, built once (no per-request statement construction or
# cache-key work): one row per store, or one row with a NULL store for a user without any.
_TOKENS, _USERS = ApiToken.__table__, User.__table__
_TOKEN_OWNER = (
    select(_TOKENS.c.id, _TOKENS.c.last_used_at, _USERS.c.id, _USERS.c.role, user_stock_locations.c.stock_location_id)
    .select_from(_TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
                 .outerjoin(user_stock_locations, user_stock_locations.c.user_id == _USERS.c.id))
    .where(_TOKENS.c.key_digest == bindparam("digest"), _TOKENS.c.revoked.is_(False), _USERS.c.active.is_(True))
    .order_by(user_stock_locations.c.stock_location_id))


def token_owner(session: Session, key: str) -> TokenOwner | None:
    """The active user behind an unrevoked token with this key, or None: one query, on the session's connection."""
    rows = session.connection().execute(_TOKEN_OWNER, {"digest": _digest(key)}).all()
    if not rows:
        return None
    token_id, last_used_at, user_id, role, _store = rows[0]
    store_ids = None
    if role not in (Role.ADMIN.value, Role.BRAND_MANAGER.value):
        store_ids = [row[4] for row in rows if row[4] is not None]
    _touch_token(session, token_id, last_used_at)
    return TokenOwner(user_id, role, store_ids)


def user_for_token(session: Session, key: str) -> User | None:
    """The active user owning an unrevoked token with this key, or None."""
    owner = token_owner(session, key)
    return session.get(User, owner.user_id) if owner is not None else None


def set_language(session: Session, user: User, language: str) -> str:
    """Save the language the portal is shown in for the user ("" follows the browser); returns it. Commits.

    Raises ValidationFailed for a language the portal has no catalogue for."""
    code = supported(language) if language else ""
    if code is None:
        raise ValidationFailed(_("The portal is not translated into that language."), field="language")
    user.language = code
    session.commit()
    return code
