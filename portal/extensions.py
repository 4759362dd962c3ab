"""Flask extensions, created unbound here and bound to the app in create_app()."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask_babel import Babel
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy.orm import DeclarativeBase

from portal import ratelimit  # noqa: F401  (registers the rate limiter's Redis storage for redis:// URIs)


class Base(DeclarativeBase):
    """Declarative base for every model of the portal."""


if TYPE_CHECKING:
    # mypy reads db.session as a sqlalchemy.orm.Session and db.Model as a typed base class (see portal/typed_db.py).
    from portal import typed_db as db
else:
    db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
talisman = Talisman()
compress = Compress()
babel = Babel()
