"""Translation set-up: which locale a request is served in, and which one a customer's SMS is written in.

Strings are marked with gettext as `_`. A page is shown in the language the user chose on their profile, else the
best match of the browser's languages, else English. A customer's SMS is written in the order's language, else the
store's default language (see sms_locale), rendered inside flask_babel.force_locale.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flask import current_app, has_request_context, request
from flask_babel import force_locale
from flask_login import current_user

if TYPE_CHECKING:
    from portal.packages.models import Package

SUPPORTED_LOCALES = ("en", "tr")
# How each language names itself, for the language switch (never translated: a reader finds their own).
LANGUAGE_NAMES = {"en": "English", "tr": "Türkçe"}
T = TypeVar("T")


def supported(code: str | None) -> str | None:
    """The supported locale a language tag stands for ("tr-TR", "TR", "tr_TR" -> "tr"), or None."""
    if not code:
        return None
    base = str(code).strip().replace("_", "-").split("-")[0].lower()
    return base if base in SUPPORTED_LOCALES else None


def order_language(code: object) -> str:
    """An order's language as stored on the package: a supported locale, or "" (the store's language then)."""
    return supported(code) or "" if isinstance(code, str) else ""


def user_language() -> str | None:
    """The language the logged-in user chose on their profile, or None (not logged in, or no choice)."""
    try:
        if current_user and current_user.is_authenticated:
            return supported(getattr(current_user, "language", ""))
    except RuntimeError:  # no login manager on this app (a bare test app)
        return None
    return None


def select_locale() -> str:
    """The request's locale: the user's choice, else the best match of the browser's languages, else the default."""
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    if not has_request_context():
        return default
    return user_language() or request.accept_languages.best_match(SUPPORTED_LOCALES) or default


def sms_locale(package: Package) -> str:
    """The language of a text to the package's customer: the order's, else the store's, else CUSTOMER_LANGUAGE."""
    return (supported(package.language) or supported(package.stock_location.language)
            or supported(current_app.config.get("CUSTOMER_LANGUAGE")) or "en")


def in_customer_language(package: Package, render: Callable[[], T]) -> T:
    """Run render() (which builds an SMS body with gettext) in the package customer's language."""
    with force_locale(sms_locale(package)):
        return render()


def N_(message: str) -> str:
    """Mark a string for translation without translating it: for module-level constants (state labels, choices)
    that must stay plain strings (API payloads, JSON), translated with gettext where they are shown."""
    return message
