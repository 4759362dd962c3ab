"""Reading a JSON request body for the API."""
from __future__ import annotations

import json

from flask import request

from portal.errors import ValidationFailed


def json_object() -> dict:
    """The request body as a JSON object; raises ValidationFailed for anything else (nothing is changed)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ValidationFailed("The request body must be a JSON object.")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValidationFailed("The request body is not valid JSON.") from None
    except RecursionError:  # thousands of nested arrays or objects: no request of ours looks like that
        raise ValidationFailed("The request body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object.")
    return body
