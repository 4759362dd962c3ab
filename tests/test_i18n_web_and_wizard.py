"""The web layer and the setup wizard go through the catalogue: step titles and state labels, error pages, the
age filter, messages of the wizard's domain, and <html lang> that follows the request's locale.

A made-up Turkish catalogue tells a translated text from its English msgid; data (steps.py, STATE_LABELS,
web.ERROR_MESSAGES) stays plain English.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import g

from portal import i18n, web
from portal.db_types import utcnow
from portal.errors import ValidationFailed
from portal.extensions import babel, db
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.setup.steps import BY_KEY
from tests.i18n_catalogue import turkish_catalogue_config

TEST_TRANSLATIONS = {
    "Control OMS machine": "OMS makinesini kontrol et",
    "Check that Omnitron can be reached, and how fast.": "Omnitron erişilebilir mi, ne kadar hızlı?",
    "Not started": "Başlamadı",
    "This page does not exist, or it is not in your store.": "Bu sayfa yok ya da mağazanızda değil.",
    "Say why this step is skipped.": "Bu adımın neden atlandığını yazın.",
    "Unknown setup step %(key)s.": "Bilinmeyen kurulum adımı %(key)s.",
    "%(name)s must be a number.": "%(name)s bir sayı olmalı.",
    ("%(num)d min", "%(num)d min"): ("%(num)d dk", "%(num)d dk"),
    ("%(num)d h", "%(num)d h"): ("%(num)d sa", "%(num)d sa"),
    ("%(num)d d", "%(num)d d"): ("%(num)d gün", "%(num)d gün"),
}


@pytest.fixture
def app_config(tmp_path):
    """The portal's catalogues plus the made-up Turkish one."""
    return turkish_catalogue_config(tmp_path, TEST_TRANSLATIONS)


def _forget_cached_locale() -> None:
    """Flask-Babel keeps the locale in `g`; test requests share the test's app context, so drop it per request."""
    g.pop("_flask_babel", None)


@pytest.fixture
def with_turkish(app, monkeypatch):
    """Turkish among the supported locales, the locale chosen afresh per request, and no stale catalogue cache."""
    monkeypatch.setattr(i18n, "SUPPORTED_LOCALES", ("en", "tr"))
    app.before_request_funcs.setdefault(None, []).insert(0, _forget_cached_locale)
    babel.domain_instance.cache.clear()
    yield
    babel.domain_instance.cache.clear()


def _in(app, language: str):
    """A request context whose browser asks for this language."""
    context = app.test_request_context("/", headers={"Accept-Language": language})
    context.push()
    _forget_cached_locale()
    return context


TR = {"Accept-Language": "tr"}


def test_step_titles_and_state_labels_translate_on_the_wizard_home(client, make, auth_actions, with_turkish):
    """The home lists the steps and their states in the browser's language; the data stays English."""
    make.user("root", role="admin")
    auth_actions.login("root")

    turkish = client.get("/setup/", headers=TR).get_data(as_text=True)
    english = client.get("/setup/", headers={"Accept-Language": "en"}).get_data(as_text=True)

    assert "OMS makinesini kontrol et" in turkish and "Omnitron erişilebilir mi" in turkish
    assert "Başlamadı" in turkish
    assert "Control OMS machine" in english and "Not started" in english and "Başlamadı" not in english
    step = BY_KEY["machine"]
    assert (step.english_title, step.english_summary) == ("Control OMS machine",
                                                          "Check that Omnitron can be reached, and how fast.")
    assert wizard.STATE_LABELS[SetupStep.NOT_STARTED] == "Not started"


def test_a_step_page_shows_its_title_translated(client, make, auth_actions, with_turkish):
    """A step page's heading uses the translated title."""
    make.user("root", role="admin")
    auth_actions.login("root")
    page = client.get("/setup/machine", headers=TR).get_data(as_text=True)
    assert "OMS makinesini kontrol et" in page


def test_the_html_lang_follows_the_locale(client, with_turkish):
    """<html lang> names the language the page is served in."""
    assert '<html lang="tr"' in client.get("/login", headers=TR).get_data(as_text=True)
    assert '<html lang="en"' in client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)


def test_an_error_page_message_is_translated(client, make, auth_actions, with_turkish):
    """The fixed messages of the error pages are English data, translated when the page is rendered."""
    make.user("root", role="admin")
    auth_actions.login("root")
    response = client.get("/no-such-page", headers=TR)
    assert response.status_code == 404
    assert "Bu sayfa yok ya da mağazanızda değil." in response.get_data(as_text=True)
    assert web.ERROR_MESSAGES[404] == "This page does not exist, or it is not in your store."
    english = client.get("/no-such-page").get_data(as_text=True)
    assert "This page does not exist, or it is not in your store." in english


@pytest.mark.parametrize(("ago", "english", "turkish"), [
    (timedelta(seconds=5), "1 min", "1 dk"),
    (timedelta(minutes=5, seconds=10), "5 min", "5 dk"),
    (timedelta(hours=2, minutes=3), "2 h", "2 sa"),
    (timedelta(days=3, hours=1), "3 d", "3 gün"),
])
def test_the_age_filter_keeps_its_english_and_translates(app, with_turkish, ago, english, turkish):
    """"5 min" stays "5 min" in English and goes through ngettext for other languages."""
    for language, expected in (("en", english), ("tr", turkish)):
        context = _in(app, language)
        try:
            assert web.age(utcnow() - ago) == expected
        finally:
            context.pop()
    assert web.age(None) == ""


def test_wizard_and_web_refusals_are_translated(app, with_turkish):
    """Messages of the wizard's service and of web.check_int_args come from the catalogue, placeholders filled."""
    context = _in(app, "tr")
    try:
        with pytest.raises(ValidationFailed) as refused:
            wizard.skip(db.session, "machine", "  ", user_id=None)
        assert refused.value.message == "Bu adımın neden atlandığını yazın."
        assert refused.value.field == "reason"
        with pytest.raises(ValidationFailed) as unknown:
            wizard.mark(db.session, "no_such_step", SetupStep.DONE, user_id=None)
        assert unknown.value.message == "Bilinmeyen kurulum adımı 'no_such_step'."
        with pytest.raises(ValidationFailed) as not_a_number:
            web.check_int_args({"cursor": "12a"}, ("cursor",))
        assert not_a_number.value.message == "cursor bir sayı olmalı."
    finally:
        context.pop()


def test_the_typed_htmx_accessors(app):
    """is_htmx() is true for any htmx request; is_fragment_request() only for one that is not boosted."""
    cases = [({}, False, False), ({"HX-Request": "true"}, True, True),
             ({"HX-Request": "true", "HX-Boosted": "true"}, True, False)]
    for headers, htmx, fragment in cases:
        with app.test_request_context("/", headers=headers):
            assert (web.is_htmx(), web.is_fragment_request()) == (htmx, fragment)
            assert bool(web.htmx_headers()) is htmx
