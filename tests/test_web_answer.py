"""portal.web.answer and friends: the one way to answer htmx (page or named parts, status, toast, events)."""
from __future__ import annotations

import json

import pytest
from jinja2 import ChoiceLoader, DictLoader

from portal.web import add_events, answer, htmx_response, hx_redirect, nothing

PAGE = """<html><body>{% block head %}<h1>{{ title }}</h1>{% endblock %}
{% block panel %}<div id="panel">{{ count }}</div>{% endblock %}</body></html>"""
HX = {"HX-Request": "true"}


@pytest.fixture
def templates(app):
    """A page with two blocks and a partial, next to the portal's templates."""
    app.jinja_env.loader = ChoiceLoader([DictLoader({"t/page.html": PAGE, "t/_chip.html": "<p id='chip'>{{ count }}</p>"}),
                                         app.jinja_env.loader])
    return app


def test_a_normal_visit_gets_the_whole_page(templates):
    with templates.test_request_context("/"):
        response = answer("t/page.html", "panel", title="Hello", count=3)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith("<html>") and "<h1>Hello</h1>" in body
    assert "HX-Request" in response.vary and "HX-Trigger" not in response.headers


def test_an_htmx_request_gets_only_the_named_parts_in_order(templates):
    with templates.test_request_context("/", headers=HX):
        response = answer("t/page.html", "panel", "t/_chip.html", code=422, title="Hello", count=3)
    assert response.status_code == 422
    assert response.get_data(as_text=True) == "<div id=\"panel\">3</div><p id='chip'>3</p>"
    assert "HX-Request" in response.vary


def test_a_boosted_request_gets_the_whole_page(templates):
    with templates.test_request_context("/", headers={**HX, "HX-Boosted": "true"}):
        response = answer("t/page.html", "panel", title="Hello", count=3)
    assert "<h1>Hello</h1>" in response.get_data(as_text=True)


def test_toast_and_events_are_merged_into_one_hx_trigger_header(templates):
    with templates.test_request_context("/", headers=HX):
        response = answer("t/page.html", "panel", toast="Saved.", events={"close-modal": True, "packages-changed": 1},
                          count=1, title="")
        add_events(response, {"more": "yes"})
    assert len(response.headers.getlist("HX-Trigger")) == 1
    assert json.loads(response.headers["HX-Trigger"]) == {
        "close-modal": True, "packages-changed": 1, "more": "yes", "toast": {"message": "Saved.", "level": "success"}}


def test_an_error_toast_keeps_its_level(app):
    with app.test_request_context("/", headers=HX):
        response = htmx_response("<p>x</p>", 409, toast="Already running.", level="info")
    assert response.status_code == 409
    assert json.loads(response.headers["HX-Trigger"])["toast"] == {"message": "Already running.", "level": "info"}


def test_hx_redirect_is_a_full_page_load_for_htmx_and_a_redirect_otherwise(app):
    with app.test_request_context("/", headers=HX):
        response = hx_redirect("/somewhere")
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/somewhere"
    with app.test_request_context("/"):
        response = hx_redirect("/somewhere")
    assert response.status_code == 302 and response.headers["Location"] == "/somewhere"


def test_nothing_swaps_nothing_but_can_say_why(app):
    with app.test_request_context("/", headers=HX):
        response = nothing(422, toast="The form expired.", level="error")
    assert response.status_code == 422 and response.get_data() == b"" and response.headers["HX-Reswap"] == "none"
    assert json.loads(response.headers["HX-Trigger"])["toast"]["level"] == "error"
