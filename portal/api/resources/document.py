"""The OpenAPI document itself: public, generated from the operations."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from portal.api import openapi
from portal.api.operations import Access, operation


@operation("GET", "/openapi.json", access=Access.PUBLIC, answer=dict[str, Any], tag="document",
           summary="This document.")
def openapi_document():
    """The OpenAPI document describing this API."""
    return jsonify(openapi.document())
