"""The setup domain's messages (scenarios, cargo, stock integrations, geocoding, Omnitron) go through the catalogue.

A made-up Turkish catalogue tells a translated message from its English msgid; the placeholders are filled
after translation, and module-level labels (N_) stay English in data but translate where they are shown.
"""
from __future__ import annotations

import pytest
import requests
from flask import g

from portal import i18n
from portal.cargo import service as cargo
from portal.cargo.companies import SHIPPING_COMPANIES
from portal.errors import NotFound, ValidationFailed
from portal.extensions import babel, db
from portal.geolocation.client import GeocodingError, GoogleGeocoder
from portal.integrations import engines
from portal.integrations import service as integrations
from portal.integrations.engines import ENGINES
from portal.omnitron import OmnitronClient, OmnitronUnreachable
from portal.scenarios import service as scenarios
from tests.i18n_catalogue import turkish_catalogue_config

TEST_TRANSLATIONS = {
    "Unknown rule %(rule)s.": "Bilinmeyen kural %(rule)s.",
    "Select by quota": "Kotaya göre seç",
    "No scenario with id %(id)s.": "%(id)s numaralı senaryo yok.",
    "Customer code": "Müşteri kodu",
    "%(field)s is required for %(company)s.": "%(company)s için %(field)s gerekli.",
    "The token is required for %(engine)s.": "%(engine)s için jeton gerekli.",
    "REST service with a token": "Jetonlu REST servisi",
    "Nothing answers at %(url)s (HTTP 404). Check the URL.": "%(url)s adresinde yanıt yok (HTTP 404).",
    ("%(seconds)s second", "%(seconds)s seconds"): ("%(seconds)s saniye", "%(seconds)s saniye"),
    "%(provider)s said OK but sent no coordinates.": "%(provider)s tamam dedi ama koordinat göndermedi.",
    "connection refused": "bağlantı reddedildi",
    "Omnitron at %(url)s cannot be reached (%(reason)s). Check OMNITRON_URL and that the Omnitron machine is "
    "running.": "%(url)s adresindeki Omnitron'a ulaşılamıyor (%(reason)s).",
}


@pytest.fixture
def app_config(tmp_path):
    """The portal's catalogues plus the made-up Turkish one."""
    return turkish_catalogue_config(tmp_path, TEST_TRANSLATIONS)


@pytest.fixture
def turkish(app, monkeypatch):
    """A request context whose browser asks for Turkish.

    Flask-Babel caches loaded catalogues by locale on the one Babel object, across apps: the cache is emptied
    before and after, so this catalogue and other tests' made-up ones do not stand in for each other.
    """
    monkeypatch.setattr(i18n, "SUPPORTED_LOCALES", ("en", "tr"))
    babel.domain_instance.cache.clear()
    with app.test_request_context("/", headers={"Accept-Language": "tr"}):
        g.pop("_flask_babel", None)
        yield
    babel.domain_instance.cache.clear()


def test_scenario_messages_and_rule_labels(turkish):
    """A refusal with a placeholder, a NotFound, and a rule label shown on screen come out in Turkish."""
    with pytest.raises(ValidationFailed) as refused:
        scenarios.clean_rules(["NO_SUCH_RULE"])
    assert refused.value.message == "Bilinmeyen kural 'NO_SUCH_RULE'."
    with pytest.raises(NotFound) as missing:
        scenarios.get_scenario(db.session, 987654)
    assert missing.value.message == "987654 numaralı senaryo yok."

    assert scenarios.rule_label(scenarios.SELECT_BY_QUOTA) == "Kotaya göre seç"
    assert scenarios.RULES[scenarios.SELECT_BY_QUOTA][0] == "Select by quota"  # data stays English


def test_cargo_field_labels_translate_inside_messages(turkish):
    """A missing credential names the translated field label; the shipping company (a brand) stays as it is."""
    aras = SHIPPING_COMPANIES["aras"]
    with pytest.raises(ValidationFailed) as refused:
        cargo._credentials_conf(aras, {"username": "u", "password": "p"}, {})
    assert refused.value.message == "Aras Kargo için Müşteri kodu gerekli."
    assert refused.value.field == "conf.customer_code"
    assert aras.field("customer_code").label == "Customer code"


def test_stock_integration_messages(turkish):
    """The token engine's refusal, a probe's answer and the plural of seconds go through the catalogue."""
    with pytest.raises(ValidationFailed) as refused:
        integrations.save_integration(db.session, url="https://stock.example.com", stock_engine_type="token_rest",
                                      user_id=None)
    assert refused.value.message == "Jetonlu REST servisi için jeton gerekli."
    assert ENGINES["token_rest"].name == "REST service with a token"  # the API's engine list stays English

    class Answer:
        status_code = 404
        headers: dict = {}

    result = ENGINES["omnitron"]._describe(Answer(), "https://stock.example.com/health/", 12)
    assert result.message == "https://stock.example.com/health/ adresinde yanıt yok (HTTP 404)."
    assert engines._seconds(1) == "1 saniye" and engines._seconds(0.5) == "0.5 saniye"


def test_geocoding_and_omnitron_errors(turkish, monkeypatch):
    """Errors raised by the geocoding and Omnitron adapters carry the translated text."""
    class NoCoordinates:
        status_code = 200

        def json(self):
            return {"status": "OK", "results": []}

    monkeypatch.setattr(requests.Session, "get", lambda *args, **kwargs: NoCoordinates())
    with pytest.raises(GeocodingError) as failed:
        GoogleGeocoder("key", "https://maps.example.com").geocode("Kadıköy")
    assert failed.value.message == "Google Maps tamam dedi ama koordinat göndermedi."

    session = requests.Session()

    def refuse(*args, **kwargs):
        raise requests.ConnectionError(ConnectionRefusedError("refused"))

    monkeypatch.setattr(session, "request", refuse)
    client = OmnitronClient("https://omnitron.example.com", "u", "p", retries=0, session=session)
    with pytest.raises(OmnitronUnreachable) as unreachable:
        client.ping()
    assert unreachable.value.message == "https://omnitron.example.com adresindeki Omnitron'a ulaşılamıyor " \
                                        "(bağlantı reddedildi)."
