"""Configuration read from the environment, with safe development defaults."""
from __future__ import annotations

import os
from pathlib import Path

DEV_SECRET_KEY = "dev-secret-key-change-me"
BASE_DIR = Path(__file__).resolve().parent.parent


def _bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes" are true)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    """Read an integer environment variable."""
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


class Config:
    """Settings shared by every environment; each reads one environment variable."""

    ENV_NAME = os.environ.get("PORTAL_ENV", "development")
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    # Comma-separated Fernet keys, newest first; empty means "derive from SECRET_KEY" (development only).
    ENCRYPTION_KEYS = os.environ.get("ENCRYPTION_KEYS", "")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'portal.sqlite'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    REDIS_URL = os.environ.get("REDIS_URL", "")

    SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "console")
    SMS_TEMPLATE = os.environ.get(
        "SMS_TEMPLATE",
        "Your code for order {order_number} is {code}. Show it at {store_name} to collect your package.",
    )
    # The customer page's address in the ready-for-pickup SMS (https://shop.example); empty: the request's host.
    CUSTOMER_LINK_BASE_URL = os.environ.get("CUSTOMER_LINK_BASE_URL", "")
    TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
    TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
    TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
    TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")
    TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "")
    TWILIO_TIMEOUT_SECONDS = _int("TWILIO_TIMEOUT_SECONDS", 10)

    # Geocoding (setup step 9): the providers' hosts can point at a local stub; timeout per request, in seconds.
    GEOCODING_GOOGLE_BASE_URL = os.environ.get("GEOCODING_GOOGLE_BASE_URL", "https://maps.googleapis.com")
    GEOCODING_YANDEX_BASE_URL = os.environ.get("GEOCODING_YANDEX_BASE_URL", "https://geocode-maps.yandex.ru")
    GEOCODING_TIMEOUT_SECONDS = float(os.environ.get("GEOCODING_TIMEOUT_SECONDS", "") or 10)
    # Omnitron's address (setup steps 1 and 3 and the syncs); the default is the bundled sandbox (python -m sandbox).
    OMNITRON_URL = os.environ.get("OMNITRON_URL", "http://127.0.0.1:8100")
    OMNITRON_CONNECT_TIMEOUT_SECONDS = _int("OMNITRON_CONNECT_TIMEOUT_SECONDS", 5)
    OMNITRON_TIMEOUT_SECONDS = _int("OMNITRON_TIMEOUT_SECONDS", 30)
    OMNITRON_RETRIES = _int("OMNITRON_RETRIES", 3)
    OMNITRON_BACKOFF_SECONDS = float(os.environ.get("OMNITRON_BACKOFF_SECONDS", "") or 0.5)
    # The demo's sandbox (scripts/run-demo sets it): steps 9 and 10 then say that the sandbox stands in for the
    # geocoding providers and the stock service, and step 10 offers the sandbox's stock service as the default.
    DEMO_SANDBOX_URL = os.environ.get("DEMO_SANDBOX_URL", "").rstrip("/")
    # Product stock integration connection tests (setup step 10), in seconds.
    STOCK_ENGINE_TIMEOUT_SECONDS = float(os.environ.get("STOCK_ENGINE_TIMEOUT_SECONDS", "") or 5)
    # Cargo shipments (issue 9): the demo cargo service the demo clients of step 14 use ("" = OMNITRON_URL, the
    # bundled sandbox serves it), the timeout per call in seconds, and how often a shipment is tried before it
    # waits for a person's Retry.
    CARGO_SERVICE_URL = os.environ.get("CARGO_SERVICE_URL", "")
    CARGO_TIMEOUT_SECONDS = float(os.environ.get("CARGO_TIMEOUT_SECONDS", "") or 10)
    SHIPMENT_MAX_ATTEMPTS = _int("SHIPMENT_MAX_ATTEMPTS", 6)
    # Records per Omnitron page while syncing (the sync streams page by page; memory stays flat).
    SYNC_PAGE_SIZE = _int("SYNC_PAGE_SIZE", 500)

    # The SSRF guard of every outbound URL (portal/outbound.py): stock engines, geocoding, cargo and Omnitron
    # connect only to public internet addresses unless allowed here. On: any address (the demo and the tests;
    # never in production). OUTBOUND_ALLOWED_HOSTS: exact exceptions, "host:port" or "host", comma-separated
    # (an Omnitron on the brand's private network, say). Webhooks have their own switch, below. Development allows
    # the bundled sandbox at its default address (OMNITRON_URL's default); production allows nothing by default.
    OUTBOUND_ALLOW_PRIVATE_TARGETS = _bool("OUTBOUND_ALLOW_PRIVATE_TARGETS", False)
    OUTBOUND_ALLOWED_HOSTS = os.environ.get("OUTBOUND_ALLOWED_HOSTS", "127.0.0.1:8100")

    # Webhooks and the outbox worker (issue 4). Private/loopback targets are refused unless explicitly allowed
    # (development and tests only: a real brand's receivers are on the internet).
    WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "") or 10)
    WEBHOOK_ALLOW_PRIVATE_TARGETS = _bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
    # A subscription whose deliveries are dead-lettered this many times in a row is switched off.
    WEBHOOK_DISABLE_AFTER_FAILURES = _int("WEBHOOK_DISABLE_AFTER_FAILURES", 5)
    WEBHOOK_USER_AGENT = os.environ.get("WEBHOOK_USER_AGENT", "OMS-Portal-Webhooks/1.0")
    # The built-in request inspector (development and the demo, never production): a receiver inside the portal
    # that subscriptions may target, so a delivery succeeds offline. Only this exact URL is let past the SSRF
    # guard (never loopback in general); it must be the portal's own address as the worker reaches it.
    WEBHOOK_INSPECTOR = _bool("WEBHOOK_INSPECTOR", True)
    WEBHOOK_INSPECTOR_URL = os.environ.get("WEBHOOK_INSPECTOR_URL", "") or (
        f"http://127.0.0.1:{os.environ.get('PORT', '') or 5000}/webhooks/inspector/receive")
    # How long a worker's claim on a message lasts; must exceed WEBHOOK_TIMEOUT_SECONDS (a dead worker's
    # claim runs out after this and the message is delivered again, with the same webhook-id).
    OUTBOX_LEASE_SECONDS = _int("OUTBOX_LEASE_SECONDS", 60)
    # An SMS the provider keeps refusing is dead-lettered after this many attempts (staff can still Retry).
    OUTBOX_SMS_MAX_ATTEMPTS = _int("OUTBOX_SMS_MAX_ATTEMPTS", 8)
    # How many due webhook deliveries a worker claims at once (one UPDATE) and sends concurrently.
    OUTBOX_BATCH_SIZE = _int("OUTBOX_BATCH_SIZE", 32)
    # How many threads of one worker process deliver batches at once (the others run other jobs).
    OUTBOX_DRAINERS = _int("OUTBOX_DRAINERS", 2)
    # Benchmark only (bench/webhooks.py): false skips writing events to the outbox, to measure their cost.
    OUTBOX_RECORD_EVENTS = _bool("OUTBOX_RECORD_EVENTS", True)

    OTP_LENGTH = _int("OTP_LENGTH", 6)
    OTP_HOLD_DAYS = _int("OTP_HOLD_DAYS", 7)
    OTP_MAX_ATTEMPTS = _int("OTP_MAX_ATTEMPTS", 5)
    OTP_RESEND_LIMIT = _int("OTP_RESEND_LIMIT", 3)
    OTP_RESEND_WINDOW_MINUTES = _int("OTP_RESEND_WINDOW_MINUTES", 60)
    OTP_USER_FAILURE_LIMIT = _int("OTP_USER_FAILURE_LIMIT", 15)
    OTP_USER_FAILURE_WINDOW_MINUTES = _int("OTP_USER_FAILURE_WINDOW_MINUTES", 15)
    # Wrong manager passwords one user may enter in manager overrides within the window before a wait.
    OVERRIDE_MAX_FAILURES = _int("OVERRIDE_MAX_FAILURES", 3)
    OVERRIDE_FAILURE_WINDOW_MINUTES = _int("OVERRIDE_FAILURE_WINDOW_MINUTES", 15)

    LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)
    LOGIN_LOCK_MINUTES = _int("LOGIN_LOCK_MINUTES", 15)
    # Logins of one username whose passwords are being checked at once take one of LOGIN_MAX_FAILURES slots (less
    # the failures counted so far); the others wait for a slot this many seconds at most (a store's tablets
    # logging in together with its one shared account at shift start), then get the usual refusal.
    LOGIN_BUSY_WAIT_SECONDS = _int("LOGIN_BUSY_WAIT_SECONDS", 5)
    # A slot not given back for this long counts as free again: its process died in the middle of the check.
    # Keep it well above the slowest password check (Argon2id plus its turn, see ARGON2_CONCURRENCY).
    LOGIN_IN_FLIGHT_STALE_SECONDS = _int("LOGIN_IN_FLIGHT_STALE_SECONDS", 30)
    LOGIN_SESSION_HOURS = _int("LOGIN_SESSION_HOURS", 24)
    # A browser where a user logged in is remembered this many days after its last login (0: off): its next
    # logins check the password with a keyed HMAC instead of Argon2id, so a store's tablets logging in at shift
    # start do not queue behind Argon2id. See LoginDevice.
    LOGIN_DEVICE_DAYS = _int("LOGIN_DEVICE_DAYS", 30)
    # Argon2id's cost: OWASP's recommended setting (19 MiB, 2 passes, 1 lane), about 35 ms per check on one core.
    # The library's default (64 MiB, 3 passes, 4 lanes) took ~475 ms of two busy cores, so 45 tablets logging in
    # at shift start queued for seconds. Hashes made with other costs are re-made at the next good login.
    ARGON2_TIME_COST = _int("ARGON2_TIME_COST", 2)
    ARGON2_MEMORY_COST = _int("ARGON2_MEMORY_COST", 19456)
    ARGON2_PARALLELISM = _int("ARGON2_PARALLELISM", 1)
    # How many Argon2id checks one process runs at once; more wait their turn (a login storm on a gthread worker
    # then takes turns on the cores instead of time-slicing them; see portal/accounts/auth.py, _check_turns).
    ARGON2_CONCURRENCY = _int("ARGON2_CONCURRENCY", 1)
    # How often, in milliseconds, a thread running Python must hand the GIL to a waiting one (Python's default is
    # 5). A request thread back from a database round trip waits for the GIL while another thread of its process
    # renders; a command makes ~25 round trips, so at 5 ms the waits, not the work, set its time under load
    # (bench/load: command POSTs p95 310-370 ms at 5, 170-190 at 1). Applied by create_app to the whole process
    # (app and worker alike); 0 keeps Python's own.
    GIL_SWITCH_INTERVAL_MS = float(os.environ.get("GIL_SWITCH_INTERVAL_MS", "") or 1)

    # Request bodies beyond this are refused with 413 before they are read (the largest form is a few kB).
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 1024 * 1024)
    PAGE_SIZE = _int("PAGE_SIZE", 25)
    LIST_REFRESH_SECONDS = _int("LIST_REFRESH_SECONDS", 30)
    # The work queue's due times: "pack by" is creation + this, "pick up by" is ready + this.
    QUEUE_PACK_WITHIN_MINUTES = _int("QUEUE_PACK_WITHIN_MINUTES", 240)
    QUEUE_PICKUP_WITHIN_HOURS = _int("QUEUE_PICKUP_WITHIN_HOURS", 168)
    API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "600 per minute")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "") or (
        REDIS_URL if REDIS_URL else "memory://"
    )
    RATELIMIT_HEADERS_ENABLED = True
    # Redis down must not take the portal down: a limiter whose storage fails lets the request through (logged)
    # and counts in this process's memory until the storage answers again (Flask-Limiter checks it periodically).
    RATELIMIT_SWALLOW_ERRORS = _bool("RATELIMIT_SWALLOW_ERRORS", True)
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = _bool("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    # Seconds a browser or client is told to wait (Retry-After) when the database or Redis is unreachable (503).
    UNAVAILABLE_RETRY_AFTER_SECONDS = _int("UNAVAILABLE_RETRY_AFTER_SECONDS", 5)
    FORCE_HTTPS = _bool("FORCE_HTTPS", False)
    # How many proxies (TLS terminator, load balancer) in front of the portal set X-Forwarded-For/-Proto/-Host.
    # 0 trusts none; behind one proxy without this, every visitor shares the proxy's address, so the login and
    # API rate limits count everyone together.
    PROXY_COUNT = _int("PROXY_COUNT", 0)
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None
    DISPLAY_TIMEZONE = os.environ.get("DISPLAY_TIMEZONE", "Europe/Istanbul")
    # The language of customers' SMS when neither their order nor their store names one ("en", "tr").
    CUSTOMER_LANGUAGE = os.environ.get("CUSTOMER_LANGUAGE", "en")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    TESTING = False


class ProductionConfig(Config):
    """Production: HTTPS and secure cookies by default; a real secret, encryption key and SMS provider are required."""

    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    FORCE_HTTPS = _bool("FORCE_HTTPS", True)
    # Production never receives its own webhooks: the inspector is off whatever the environment says.
    WEBHOOK_INSPECTOR = False
    # The SSRF guard allows no private address unless the operator lists it (OUTBOUND_ALLOWED_HOSTS).
    OUTBOUND_ALLOWED_HOSTS = os.environ.get("OUTBOUND_ALLOWED_HOSTS", "")


class TestingConfig(Config):
    """Tests: in-memory SMS and no rate-limit storage outside the process."""

    TESTING = True
    SMS_PROVIDER = "memory"
    RATELIMIT_STORAGE_URI = "memory://"
    # The cheapest Argon2id cost: the suite logs in hundreds of times. Never set these this low outside tests.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    ARGON2_PARALLELISM = 1


CONFIGS = {"development": Config, "production": ProductionConfig, "testing": TestingConfig}


class ConfigurationError(RuntimeError):
    """Raised when the portal is started with settings that are unsafe or inconsistent."""


def check_production(config: dict) -> None:
    """Refuse to run in production with the development secret, without an encryption key, or with an SMS
    provider that sends nothing."""
    if config.get("ENV_NAME") != "production":
        return
    if not config.get("SECRET_KEY") or config["SECRET_KEY"] == DEV_SECRET_KEY or len(config["SECRET_KEY"]) < 32:
        raise ConfigurationError("SECRET_KEY must be set to a random value of 32+ characters in production.")
    if not config.get("ENCRYPTION_KEYS"):
        raise ConfigurationError("ENCRYPTION_KEYS must be set in production (see README).")
    if config.get("SMS_PROVIDER") in ("console", "memory"):
        raise ConfigurationError(f"SMS_PROVIDER={config.get('SMS_PROVIDER')} only writes codes to the log; customers "
                                 "would get nothing. Set SMS_PROVIDER=twilio and its TWILIO_* settings in production.")
