"""The OMS Portal: a Flask app built by create_app()."""
from __future__ import annotations

import logging
import os
import sys
from typing import cast

from flask import Flask, Response
from flask_sqlalchemy import SQLAlchemy

from portal.config import CONFIGS, ConfigurationError, check_production


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure the portal; test_config overrides the environment's settings."""
    app = Flask(__name__, instance_relative_config=True)
    env_name = (test_config or {}).get("ENV_NAME") or os.environ.get("PORTAL_ENV", "development")
    app.config.from_object(CONFIGS.get(env_name, CONFIGS["development"]))
    app.config["ENV_NAME"] = env_name
    if test_config:
        app.config.update(test_config)
    check_production(app.config)
    _set_switch_interval(app.config["GIL_SWITCH_INTERVAL_MS"])
    if app.config.get("PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_COUNT"]
        # Flask's documented way to wrap the WSGI app; mypy refuses assigning to a method, and only that.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    os.makedirs(app.instance_path, exist_ok=True)
    _configure_engine(app)
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Werkzeug sets its own logger to INFO (a line per request) unless a level is set: LOG_LEVEL applies to it too.
    logging.getLogger("werkzeug").setLevel(app.config["LOG_LEVEL"])
    if logging.getLogger("huey").handlers:
        # Inside huey_consumer, which prints its own log lines: through the root logger too they would show twice.
        logging.getLogger("huey").propagate = False

    from portal import models  # noqa: F401  (registers every table)
    from portal.extensions import babel, compress, csrf, db, htmx, limiter, login_manager, migrate, talisman
    from portal.i18n import select_locale

    db.init_app(app)
    babel.init_app(app, locale_selector=select_locale, default_translation_directories="translations")
    # The type checker sees db as portal.typed_db (see portal/extensions.py); at run time it is the SQLAlchemy object.
    migrate.init_app(app, cast(SQLAlchemy, db), directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
    compress.init_app(app)
    app.after_request(_bodiless_stays_plain)  # registered after Compress, so it runs before Compress's hook
    talisman.init_app(
        app,
        force_https=app.config["FORCE_HTTPS"],
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        content_security_policy={
            "default-src": "'self'",
            "img-src": "'self' data:",
            "style-src": "'self'",
            "script-src": "'self'",
            "frame-ancestors": "'none'",
            "form-action": "'self'",
        },
        frame_options="DENY",
        referrer_policy="same-origin",
        permissions_policy={"geolocation": "()", "camera": "()", "microphone": "()"},
    )

    from portal import web
    from portal.accounts import auth
    from portal.api import bp as api_bp
    from portal.blueprints.auth import bp as auth_bp
    from portal.blueprints.customer import bp as customer_bp
    from portal.blueprints.packages import bp as packages_bp
    from portal.blueprints.settings import bp as settings_bp
    from portal.blueprints.setup import bp as setup_bp
    from portal.blueprints.webhooks import bp as webhooks_bp
    from portal.cli import register_cli
    from portal.wiring import wire

    wire()
    auth.init_login_manager(login_manager)
    # Before any route is added: an id beyond what the database can hold is a 404, not a driver overflow.
    app.url_map.converters["int"] = web.BoundedIntConverter
    app.register_blueprint(auth_bp)
    app.register_blueprint(packages_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(setup_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(customer_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)
    web.init_app(app)
    register_cli(app)
    return app


def _configure_engine(app: Flask) -> None:
    """Engine options per database: SQLite gets WAL and a busy timeout; PostgreSQL a pool."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgres://"):
        uri = "postgresql+psycopg://" + uri[len("postgres://"):]
    elif uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri[len("postgresql://"):]
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": 15, "check_same_thread": False})
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///:memory:"):
            os.makedirs(os.path.dirname(uri[len("sqlite:///"):]) or ".", exist_ok=True)
    else:
        options.setdefault("pool_pre_ping", True)
        options.setdefault("pool_size", int(os.environ.get("DB_POOL_SIZE", "10")))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _set_switch_interval(milliseconds: float) -> None:
    """Let a thread back from I/O take the GIL sooner (see Config.GIL_SWITCH_INTERVAL_MS); 0 keeps Python's."""
    if milliseconds < 0 or milliseconds > 1000:
        raise ConfigurationError(f"GIL_SWITCH_INTERVAL_MS must be between 0 and 1000, not {milliseconds}.")
    if milliseconds:
        sys.setswitchinterval(milliseconds / 1000)


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL lets readers work while a command writes; foreign keys are enforced."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _install_sqlite_pragmas() -> None:
    """Register the pragma hook for every SQLite connection the portal opens."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        """Apply the SQLite pragmas to new SQLite connections."""
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            _sqlite_pragmas(dbapi_connection, connection_record)


_install_sqlite_pragmas()


def _bodiless_stays_plain(response: Response) -> Response:
    """A 204 or 304 has no body: say it is empty, so Flask-Compress does not label it Content-Encoding: br (a
    client then tries to decode nothing and fails)."""
    if response.status_code in (204, 304):
        response.content_length = 0
    return response
