"""The UX measurements themselves catch what they are meant to catch, on a page made to fail them."""
from __future__ import annotations

import pytest

BAD_PAGE = """
<!doctype html><html lang="en"><head><title>Bad page</title></head><body>
<main>
  <h1>Counter</h1>
  <p><button id="tiny" style="width:30px;height:20px;padding:0">x</button></p>
  <div style="display:flex;gap:2px">
    <button id="left" style="width:80px;height:48px">Left</button>
    <button id="right" style="width:80px;height:48px">Right</button>
  </div>
  <input id="nameless" type="text" style="height:48px;width:200px">
  <p style="color:#bbb;background:#fff">Pale text nobody can read</p>
  <div id="wide" style="width:2000px;height:10px"></div>
</main>
</body></html>
"""


@pytest.fixture
def context(new_context, viewport_size):
    """A bare tablet browser: the test writes its own page, so it needs no portal (and runs on no database)."""
    return new_context(viewport=viewport_size, has_touch=True)


def test_measurements_report_small_crowded_overflowing_and_inaccessible_things(page, ux):
    page.set_content(BAD_PAGE)
    figures = ux.check(page, "bad page", scope="main")

    assert figures["scroll_width"] > figures["inner_width"]
    assert any(line.startswith("div#wide") for line in figures["sticking_out"])
    assert figures["small_targets"] == ['button#tiny "x": 30x20']
    assert figures["crowded_commands"] == ['button#left "Left" <-> button#right "Right": 2 px']
    violations = {v["id"] for v in figures["axe_violations"]}
    assert {"color-contrast", "label"} <= violations
