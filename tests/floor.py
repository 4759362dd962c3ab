"""What the store-floor tests share besides their fixtures (`store` and `zeynep` are in tests/conftest.py)."""
from __future__ import annotations

HX = {"HX-Request": "true"}


def text(response) -> str:
    """The response body as text."""
    return response.get_data(as_text=True)
