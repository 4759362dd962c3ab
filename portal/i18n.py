"""Translation set-up: which locale a request is served in. Strings are marked with gettext as `_`."""
from __future__ import annotations

from flask import current_app, has_request_context, request

SUPPORTED_LOCALES = ("en",)


def select_locale() -> str:
    """The request's locale: the best match of the browser's languages, else the configured default."""
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    if not has_request_context():
        return default
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or default


def N_(message: str) -> str:
    """Mark a string for translation without translating it: for module-level constants (state labels, choices)
    that must stay plain strings (API payloads, JSON), translated with gettext where they are shown."""
    return message
