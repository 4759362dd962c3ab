"""Users, their roles, their stores and their API tokens."""
from __future__ import annotations

import enum
import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db_types import UTCDateTime, utcnow
from portal.extensions import db
from portal.i18n import N_

if TYPE_CHECKING:  # only for the annotation; SQLAlchemy resolves the name through its registry
    from portal.stores.models import StockLocation


class Role(enum.StrEnum):
    """What a user may do in the portal."""

    ADMIN = "admin"
    BRAND_MANAGER = "brand_manager"
    STAFF = "staff"

    @property
    def label(self) -> str:
        """Human name of the role, in English (marked with N_; screens show it through _())."""
        return {"admin": N_("Admin"), "brand_manager": N_("Brand manager"), "staff": N_("Store staff")}[self.value]


user_stock_locations = Table(
    "user_stock_locations",
    db.metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("stock_location_id", Integer, ForeignKey("stock_locations.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    """A person who logs in: admin, brand manager or store staff."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=Role.STAFF.value)
    active: Mapped[bool] = mapped_column(default=True)
    # The language the portal is shown in for this user ("en", "tr"); empty: the browser's languages decide.
    language: Mapped[str] = mapped_column(String(8), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    stock_locations: Mapped[list[StockLocation]] = relationship(
        secondary=user_stock_locations, lazy="selectin", order_by="StockLocation.name"
    )
    api_tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:
        """Flask-Login: deactivated users cannot log in."""
        return self.active

    def get_id(self) -> str:
        """Flask-Login's session id: "<id>.<stamp>"; a new password changes the stamp, ending every other session."""
        return f"{self.id}.{self.session_stamp()}"

    def session_stamp(self) -> str:
        """A keyed digest of the password hash (the session cookie is readable, so not the hash itself)."""
        key = current_app.config["SECRET_KEY"].encode()
        return hmac.new(key, (self.password_hash or "").encode(), hashlib.sha256).hexdigest()[:20]

    @property
    def role_enum(self) -> Role:
        """The role as an enum member."""
        return Role(self.role)

    @property
    def is_admin(self) -> bool:
        """True for admins, who see every store."""
        return self.role == Role.ADMIN.value

    @property
    def sees_all_stores(self) -> bool:
        """Admins and brand managers are not limited to stores."""
        return self.role in (Role.ADMIN.value, Role.BRAND_MANAGER.value)

    @property
    def visibility(self) -> str:
        """Which command visibility this user's screens show: INSTORE for staff, OMS_WEB otherwise."""
        return "INSTORE" if self.role == Role.STAFF.value else "OMS_WEB"

    @property
    def store_ids(self) -> list[int]:
        """Ids of the stock locations this user belongs to."""
        return [s.id for s in self.stock_locations]


class ApiToken(db.Model):
    """A REST API key: only its SHA-256 digest is stored; the key is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(12))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(back_populates="api_tokens")


class LoginThrottle(db.Model):
    """Failed logins counted per typed username, known or not, so a locked account and an unknown name answer alike.

    The key is the SHA-256 of the username as typed (stripped), so nothing typed into the username field is kept.
    Attempts whose password is being checked right now are counted apart from the failures (in_flight): a slot is
    taken before the check and given back after it, so logins sent at once cannot check more than the limit's
    worth of passwords, and right passwords sent at once do not count as failures.
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    in_flight: Mapped[int] = mapped_column(default=0)
    # When a slot was last taken or given back: slots older than LOGIN_IN_FLIGHT_STALE_SECONDS count as none
    # (a process that died in the middle of a check never gives its slot back).
    in_flight_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class LoginSession(db.Model):
    """One logged-in browser: the session cookie names it, and deleting the row ends that session on the server.

    Only the SHA-256 of the random session key is stored. Logout deletes its row; a password reset or
    deactivation deletes all of the user's rows.
    """

    __tablename__ = "login_sessions"

    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginDevice(db.Model):
    """A browser (a store's tablet) where a user logged in with the right password: its next logins skip Argon2id.

    The device cookie holds a random key; only its SHA-256 is stored (device_digest), with an HMAC of the password
    under a key made of that device key and SECRET_KEY (verifier). A copy of the database alone therefore tells
    nothing about the password (the device key is not in it), and a copied cookie alone still needs the password,
    guessed online under the same lockout. A password reset, a deactivation or "log out everywhere" deletes the
    user's rows; a row lapses LOGIN_DEVICE_DAYS after its last use.
    """

    __tablename__ = "login_devices"
    __table_args__ = (UniqueConstraint("device_digest", "user_id", name="uq_login_devices_device_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_digest: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    verifier: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
