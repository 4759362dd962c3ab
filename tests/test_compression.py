"""Responses are compressed when they have a body, and a bodiless answer (204, 304) never claims an encoding."""
from __future__ import annotations

from flask import Response


def test_a_204_is_not_labelled_brotli_and_a_page_with_a_body_still_is(app, client):
    app.add_url_rule("/__test/nothing", "test_nothing", lambda: Response(status=204, mimetype="application/json"))
    app.add_url_rule("/__test/page", "test_page", lambda: Response("<p>" + "raf " * 400 + "</p>", mimetype="text/html"))

    empty = client.get("/__test/nothing", headers={"Accept-Encoding": "br, gzip"})
    assert empty.status_code == 204
    assert "Content-Encoding" not in empty.headers and empty.data == b""

    page = client.get("/__test/page", headers={"Accept-Encoding": "br, gzip"})
    assert page.status_code == 200 and page.headers["Content-Encoding"] in ("br", "gzip")
