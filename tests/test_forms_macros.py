"""The form field macros (portal/templates/_forms.html): label, control, error and hint tied together."""
from __future__ import annotations

import pytest


def render(app, source: str, **context) -> str:
    """Render a template snippet that imports the macros."""
    with app.test_request_context("/"):
        template = app.jinja_env.from_string('{% from "_forms.html" import field, described_by, error_message %}'
                                             + source)
        return " ".join(template.render(**context).split())


def test_a_valid_field_has_a_label_and_no_error(app):
    html = render(app, '{{ field("url", "URL", value=url, required=true, maxlength=500, autocomplete=false) }}',
                  url="https://x.example/a?b=1&c=2")
    assert '<label for="url">URL</label>' in html
    assert '<input id="url" name="url" type="text" value="https://x.example/a?b=1&amp;c=2" required maxlength="500" >' \
        in html
    assert "aria-invalid" not in html and "field-error" not in html


def test_an_invalid_field_points_at_its_error_and_hint(app):
    html = render(app, '{% call field("key", "Key", id="geo-key", error="Too short.") %}Leave empty to keep it.'
                       '{% endcall %}')
    assert 'aria-invalid="true" aria-describedby="geo-key-error geo-key-hint"' in html
    assert '<small class="field-error" id="geo-key-error" role="alert">Too short.</small>' in html
    assert '<small id="geo-key-hint" class="muted">Leave empty to keep it.</small>' in html


@pytest.mark.parametrize("hint, shown", [("", False), ("stored", True)])
def test_a_call_block_hint_can_be_left_out(app, hint, shown):
    html = render(app, '{% call field("p", "P", hint=hint) %}A secret is stored.{% endcall %}', hint=hint)
    assert ("A secret is stored." in html) is shown
    assert ('aria-describedby="p-hint"' in html) is shown


def test_a_password_field_never_carries_its_value(app):
    html = render(app, '{{ field("password", "Password", type="password", value="s3cret!") }}')
    assert "s3cret" not in html and "value=" not in html
