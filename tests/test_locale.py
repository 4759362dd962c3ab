"""Turkish and English with the portal's real catalogues: which language a page is shown in (the profile's choice,
else the browser's, else English), customer SMS in the order's or the store's language, dates, numbers and phone
numbers for the locale and the store's time zone, and a Turkish page without English chrome."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask import g
from flask_babel import force_locale, gettext

from portal.extensions import babel, db
from portal.i18n import order_language, sms_locale, supported
from portal.orders.service import parse_order
from portal.packages.states import State
from portal.web import local_time, number, phone


def _forget_cached_locale() -> None:
    """Flask-Babel keeps the locale in `g`; test requests share the test's app context, so drop it per request."""
    g.pop("_flask_babel", None)


@pytest.fixture(autouse=True)
def locale_per_request(app):
    """Every request chooses its locale afresh, with no catalogue cached from another test's app."""
    app.before_request_funcs.setdefault(None, []).insert(0, _forget_cached_locale)
    babel.domain_instance.cache.clear()
    yield
    babel.domain_instance.cache.clear()
    _forget_cached_locale()


@pytest.fixture
def staff(make, auth_actions):
    """A logged-in staff member of one store, with a packed click & collect package there."""
    package = make.package(state=State.PACKED)
    user = make.user("zeynep", stores=[package.stock_location])
    auth_actions.login("zeynep")
    return user, package


def _page(client, url: str, language: str | None = None) -> str:
    """The page's HTML, asked for with the browser's Accept-Language (or none)."""
    headers = {"Accept-Language": language} if language else {}
    return client.get(url, headers=headers).get_data(as_text=True)


def _lang(html: str) -> str:
    """The page's <html lang>."""
    found = re.search(r'<html lang="([^"]+)"', html)
    assert found, html[:200]
    return found.group(1)


def test_the_browser_language_beats_the_default(client, staff):
    """With no choice on the profile, the browser's best supported language is used, else English."""
    assert _lang(_page(client, "/packages", "tr-TR,tr;q=0.9,en;q=0.5")) == "tr"
    assert "Paketler" in _page(client, "/packages", "tr")
    assert _lang(_page(client, "/packages", "de-DE,de;q=0.9")) == "en"  # no German: the default
    assert _lang(_page(client, "/packages")) == "en"


def test_the_profile_choice_beats_the_browser(client, staff):
    """Turkish chosen on the profile page shows Turkish to an English browser, and back; empty follows the browser."""
    user, _package = staff
    answer = client.post("/profile/language", data={"language": "tr"}, headers={"Accept-Language": "en"},
                         follow_redirects=True)
    assert "Dil kaydedildi." in answer.get_data(as_text=True)
    db.session.refresh(user)
    assert user.language == "tr"
    page = _page(client, "/packages", "en-US,en;q=0.9")
    assert _lang(page) == "tr" and "Çıkış yap" in page and "Log out" not in page

    client.post("/profile/language", data={"language": "en"})
    assert _lang(_page(client, "/packages", "tr")) == "en"

    client.post("/profile/language", data={"language": ""})
    assert _lang(_page(client, "/packages", "tr")) == "tr"
    assert _lang(_page(client, "/packages", "en")) == "en"


def test_the_profile_refuses_an_unknown_language(client, staff):
    """Only languages with a catalogue can be chosen; the saved choice stays."""
    user, _package = staff
    answer = client.post("/profile/language", data={"language": "de"}, follow_redirects=True)
    assert "Choose a language from the list." in answer.get_data(as_text=True)
    db.session.refresh(user)
    assert user.language == ""


def test_the_profile_page_offers_the_languages_in_their_own_names(client, staff):
    """The switch lists each language as it names itself, with the current choice selected."""
    client.post("/profile/language", data={"language": "tr"})
    page = _page(client, "/profile")
    assert re.search(r'<option selected value="tr">Türkçe</option>', page)
    assert ">English</option>" in page and "Tarayıcının dili" in page


@pytest.mark.parametrize(("order", "store", "expected"), [
    ("tr", "", "tr"),  # the order's language
    ("", "tr", "tr"),  # else the store's
    ("en", "tr", "en"),  # the order's beats the store's
    ("", "", "en"),  # else CUSTOMER_LANGUAGE
])
def test_the_pickup_sms_is_in_the_customers_language(client, staff, sms, order, store, expected):
    """The staff member works in English; the customer's SMS follows the order, then the store."""
    _user, package = staff
    package.language, package.stock_location.language = order, store
    db.session.commit()
    assert sms_locale(package) == expected

    client.post(f"/packages/{package.id}/commands/ready-for-customer-pickup", headers={"Accept-Language": "en"})

    body = sms.outbox[-1].body
    if expected == "tr":
        assert f"{package.order_number} numaralı siparişinizin teslim alma kodu: " in body
        assert f"bu kodu {package.stock_location.name} mağazasında gösterin. Son teslim alma tarihi: " in body
    else:
        assert body.startswith(f"Your code for order {package.order_number} is ")
        assert "Pick it up by " in body
    # The page the staff member gets back stays in their own language.
    assert _lang(_page(client, f"/packages/{package.id}", "en")) == "en"


def test_the_customer_language_falls_back_to_the_setting(app, make):
    """CUSTOMER_LANGUAGE decides when neither the order nor the store names a language."""
    package = make.package()
    app.config["CUSTOMER_LANGUAGE"] = "tr"
    assert sms_locale(package) == "tr"
    app.config["CUSTOMER_LANGUAGE"] = "xx"
    assert sms_locale(package) == "en"


def test_the_reminder_sms_is_in_the_customers_language(app, make, sms):
    """The hold sweep (a worker, no request) writes the reminder in the store's language, the date in Turkish."""
    from portal.packages import hold_sweep

    store = make.store()
    store.language = "tr"
    package = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP)
    package.hold_until = datetime(2027, 1, 15, 21, 30, tzinfo=UTC)  # 16 January in Istanbul (UTC+3)
    db.session.commit()

    sms_id = hold_sweep._remind(db.session, package.id, datetime(2027, 1, 15, 8, 0, tzinfo=UTC))
    db.session.commit()

    assert sms_id is not None
    from portal.crypto import decrypt
    from portal.outbox.models import OutboxMessage
    body = decrypt(db.session.get(OutboxMessage, sms_id).body_encrypted)
    assert body.startswith(f"Hatırlatma: {package.order_number} numaralı siparişiniz 16 Oca 2027 tarihine kadar")


def test_an_omnitron_order_brings_its_language():
    """The import keeps a supported language of the order ("tr-TR" -> "tr") and leaves others to the store."""
    order = {"id": 7, "number": "ORD-7", "channel": 1, "delivery_type": "cargo",
             "customer": {"first_name": "Ayşe", "last_name": "Yılmaz", "phone_number": "+905321234567"},
             "orderitem_set": [{"id": 1, "quantity": 1, "product": {"sku": "S1", "barcode": "B1", "name": "Çanta"}}]}
    assert parse_order({**order, "language_code": "tr-TR"})["language"] == "tr"
    assert parse_order({**order, "language_code": "en"})["language"] == "en"
    assert parse_order({**order, "language_code": "de-DE"})["language"] == ""
    assert parse_order(order)["language"] == ""
    assert order_language(None) == "" and order_language(42) == ""
    assert supported("TR_tr") == "tr" and supported("") is None


def test_dates_are_in_the_store_time_zone_and_the_locale(app):
    """The same moment reads in the store's zone, the month named in the page's language."""
    moment = datetime(2026, 1, 15, 21, 30, tzinfo=UTC)
    with app.test_request_context("/", headers={"Accept-Language": "tr"}):
        assert local_time(moment, "Europe/Istanbul") == "16 Oca 2026 00:30"
        assert local_time(moment, "America/New_York") == "15 Oca 2026 16:30"
        assert local_time(moment.replace(tzinfo=None), "Europe/Istanbul") == "16 Oca 2026 00:30"  # naive is UTC
        assert local_time(moment, "Not/AZone") == "15 Oca 2026 21:30"  # an unknown zone falls back to UTC
        assert number(1234.5) == "1.234,5"
    _forget_cached_locale()
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert local_time(moment, "Europe/Istanbul") == "16 Jan 2026 00:30"
        assert local_time(moment) == "16 Jan 2026 00:30"  # DISPLAY_TIMEZONE
        assert number(1234.5) == "1,234.5"
    assert phone("+905321234567") == "+90 532 123 45 67"
    assert phone("+4420 7946 0958") == "+4420 7946 0958"  # not Turkish: as stored


def test_a_package_page_shows_its_times_in_the_store_zone(client, staff):
    """The package page's history time is in the store's time zone, the phone grouped."""
    _user, package = staff
    package.stock_location.timezone = "Asia/Tokyo"  # UTC+9
    package.created_at = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    db.session.commit()
    page = _page(client, f"/packages/{package.id}", "tr")
    assert "02 Mar 2026 05:00" in page
    assert "+90 555 111 22 33" in page


class _Text(HTMLParser):
    """The text a person reads on a page (no script or style), with the accessible names of attributes."""

    SKIP = {"script", "style"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        for name, value in attrs:
            if name in ("aria-label", "title", "placeholder", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.parts.append(data.strip())


CHROME = ["Packages", "Log out", "Skip to content", "Main", "Work queue", "To pack", "Pick list", "Problems"]


def test_a_turkish_page_has_no_english_chrome(app, client, staff):
    """The staff's packages page in Turkish: every piece of the chrome is the catalogue's Turkish, none English."""
    page = _page(client, "/packages", "tr")
    reader = _Text()
    reader.feed(page)
    texts = reader.parts
    with app.test_request_context("/"), force_locale("tr"):
        for english in CHROME:
            turkish = gettext(english)
            assert turkish != english, f"{english!r} has no Turkish translation"
            if english in page or turkish in page:
                assert english not in texts, f"{english!r} is shown untranslated"
    assert "Paketler" in texts and "Çıkış yap" in texts and "İçeriğe geç" in texts


def test_the_turkish_catalogue_translates_the_states_and_sms():
    """The vendor's state names and the SMS texts have their Turkish wording in the compiled catalogue."""
    from flask import Flask
    from flask_babel import Babel

    bare = Flask("portal", root_path=str(__import__("pathlib").Path(__file__).resolve().parents[1] / "portal"))
    Babel(bare, default_translation_directories="translations")
    with bare.test_request_context("/"), force_locale("tr"):
        assert gettext("Ready for Customer Pickup") == "Müşteri Teslimatına Hazır"
        assert gettext("Packed All Items") == "Tüm Ürünler Paketlendi"
        assert gettext("Pick it up by %(date)s.", date="1 Oca") == "Son teslim alma tarihi: 1 Oca."


def test_an_expired_hold_page_is_turkish(client, staff):
    """A Turkish staff page shows the hold's end in Turkish (the months of the locale)."""
    _user, package = staff
    package.state = State.READY_FOR_CUSTOMER_PICKUP
    package.hold_until = datetime.now(UTC) + timedelta(days=40)
    db.session.commit()
    page = _page(client, f"/packages/{package.id}", "tr")
    assert "Son teslim alma" in page and _lang(page) == "tr"


def test_a_store_language_and_zone_are_set_from_the_command_line(runner, make):
    """`flask store-language` sets what the SMS and the pages follow, and refuses what the portal cannot do."""
    store = make.store(code="IST-KDK")
    result = runner.invoke(args=["store-language", "IST-KDK", "--language", "tr-TR", "--timezone", "Asia/Tokyo"])
    assert result.exit_code == 0, result.output
    assert "IST-KDK: language tr, time zone Asia/Tokyo" in result.output
    db.session.refresh(store)
    assert (store.language, store.timezone) == ("tr", "Asia/Tokyo")

    for args, error in ((["--language", "de"], "language must be one of: en, tr."),
                        (["--timezone", "Mars/Olympus"], "Unknown time zone 'Mars/Olympus'."),
                        ([], None)):
        result = runner.invoke(args=["store-language", "IST-KDK", *args])
        if error:
            assert result.exit_code != 0 and error in result.output
    db.session.refresh(store)
    assert (store.language, store.timezone) == ("tr", "Asia/Tokyo")  # refusals changed nothing
    assert runner.invoke(args=["store-language", "NOPE", "--language", "en"]).exit_code != 0
    assert runner.invoke(args=["store-language", "IST-KDK", "--language", ""]).exit_code == 0
    db.session.refresh(store)
    assert store.language == ""
