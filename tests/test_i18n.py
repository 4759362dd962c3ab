"""Translations: the catalogues are current and compile, marked strings go through gettext, the locale selector."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import g
from flask_babel import get_locale

from portal import i18n
from portal.i18n import N_
from portal.otp.service import DEFAULT_SMS_TEMPLATE
from tests.i18n_catalogue import turkish_catalogue_config

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "portal" / "translations"

# A made-up second catalogue, so that a translated string can be told from its English msgid.
TEST_TRANSLATIONS = {
    "Log in": "Giriş yap",
    "You are logged out.": "Çıkış yaptınız.",
    "Wrong username or password. After several wrong tries the account is locked for a few minutes.":
        "Kullanıcı adı veya parola yanlış. Birkaç yanlış denemeden sonra hesap kilitlenir.",
    "Ready for Customer Pickup": "Müşteri teslimine hazır",
    DEFAULT_SMS_TEMPLATE: "{order_number} siparişinizin kodu {code}. Paketinizi {store_name} mağazasından alın.",
    "Pick it up by %(date)s.": "Son teslim alma tarihi: %(date)s.",
}


@pytest.fixture
def app_config(tmp_path):
    """The portal's catalogues plus a Turkish test catalogue, and "tr" among the supported locales."""
    return turkish_catalogue_config(tmp_path, TEST_TRANSLATIONS)


def _forget_cached_locale() -> None:
    """Flask-Babel keeps the locale in `g`; test requests share the test's app context, so drop it per request."""
    g.pop("_flask_babel", None)


@pytest.fixture
def with_turkish(app, monkeypatch):
    """Let the selector choose the test catalogue's locale, chosen afresh for every request."""
    monkeypatch.setattr(i18n, "SUPPORTED_LOCALES", ("en", "tr"))
    app.before_request_funcs.setdefault(None, []).insert(0, _forget_cached_locale)


def _read(path: Path):
    with open(path, "rb") as handle:
        return read_po(handle)


def test_the_pot_is_current_and_every_catalogue_has_its_messages():
    """scripts/i18n check: the .pot matches the marked strings, and each catalogue lacks none of them."""
    result = subprocess.run(["scripts/i18n", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_english_catalogue_compiles_and_covers_the_pot():
    """The English catalogue is in git, compiles without errors, and holds every message of the .pot."""
    pot = _read(TRANSLATIONS / "messages.pot")
    english = _read(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po")
    wanted = {message.id for message in pot if message.id}
    assert len(wanted) > 300  # the screens of issue 7's areas are marked
    assert wanted <= {message.id for message in english if message.id}
    assert "Log in" in wanted and "Ready for Customer Pickup" in wanted
    assert not list(english.check())  # placeholders of translations match their msgids
    compiled = io.BytesIO()
    write_mo(compiled, english)
    assert compiled.getvalue()


def test_the_compiled_catalogue_is_ignored_by_git_and_built_by_setup():
    """The .mo files are built (scripts/setup runs scripts/i18n compile), not committed."""
    assert "scripts/i18n compile" in (ROOT / "scripts" / "setup").read_text()
    ignored = subprocess.run(["git", "check-ignore", "-q", "portal/translations/en/LC_MESSAGES/messages.mo"], cwd=ROOT)
    assert ignored.returncode == 0


def test_a_page_in_the_browsers_language(client, with_turkish):
    """A marked template string comes out translated for a browser that asks for Turkish, English otherwise."""
    turkish = client.get("/login", headers={"Accept-Language": "tr-TR,tr;q=0.9,en;q=0.5"}).get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}).get_data(as_text=True)

    assert ">Giriş yap</button>" in turkish
    assert ">Log in</button>" in english and "Giriş" not in english


def test_python_messages_go_through_gettext(client, make, auth_actions, with_turkish):
    """A domain error and a flash message, marked in Python, are translated for the request's locale."""
    make.user("zeynep")
    headers = {"Accept-Language": "tr"}

    wrong = client.post("/login", data={"username": "zeynep", "password": "not-the-password"}, headers=headers)
    assert "Kullanıcı adı veya parola yanlış." in wrong.get_data(as_text=True)

    auth_actions.login("zeynep")
    out = client.post("/logout", headers=headers, follow_redirects=True)
    assert "Çıkış yaptınız." in out.get_data(as_text=True)


def test_state_labels_are_translated_at_display_and_stay_english_in_data(client, make, auth_actions, with_turkish):
    """Module-level labels are marked with N_ and translated where they are shown."""
    from portal.packages.states import State, state_info

    assert state_info(State.READY_FOR_CUSTOMER_PICKUP).label == "Ready for Customer Pickup"  # API payloads
    package = make.package(state=State.READY_FOR_CUSTOMER_PICKUP)
    make.user("zeynep", stores=[package.stock_location])
    auth_actions.login("zeynep")
    page = client.get(f"/packages/{package.id}", headers={"Accept-Language": "tr"}).get_data(as_text=True)
    assert "Müşteri teslimine hazır" in page


def test_the_customer_sms_goes_through_the_catalogue(client, make, auth_actions, sms, with_turkish):
    """The pickup SMS uses the catalogue's text of SMS_TEMPLATE; the default template is in the catalogue. The SMS is
    written in the customer's language (here the store's), not the staff member's."""
    from portal.packages.states import State

    pot = _read(TRANSLATIONS / "messages.pot")
    assert DEFAULT_SMS_TEMPLATE in {message.id for message in pot}
    assert client.application.config["SMS_TEMPLATE"] == DEFAULT_SMS_TEMPLATE  # the setting's default is marked
    package = make.package(state=State.PACKED)
    package.stock_location.language = "tr"
    make.user("zeynep", stores=[package.stock_location])
    auth_actions.login("zeynep")

    client.post(f"/packages/{package.id}/commands/ready-for-customer-pickup", headers={"Accept-Language": "en"})

    body = sms.outbox[-1].body
    assert body.startswith(f"{package.order_number} siparişinizin kodu ")
    assert f"Paketinizi {package.stock_location.name} mağazasından alın. Son teslim alma tarihi: " in body


def test_n_marks_without_translating():
    """N_ only marks a string for extraction."""
    assert N_("Delivered") == "Delivered"


@pytest.mark.parametrize(("header", "expected"), [
    ("tr-TR,tr;q=0.9", "tr"),
    ("en-GB,en;q=0.8", "en"),
    ("de-DE,de;q=0.9", "en"),
    ("", "en"),
])
def test_the_locale_selector(app, with_turkish, header, expected):
    """The best supported match of Accept-Language, else the default locale."""
    with app.test_request_context("/", headers={"Accept-Language": header} if header else {}):
        _forget_cached_locale()
        assert i18n.select_locale() == expected
        assert str(get_locale()) == expected


def test_the_selector_outside_a_request_is_the_default(app):
    """Workers and commands (no request) use BABEL_DEFAULT_LOCALE."""
    assert i18n.select_locale() == "en"
