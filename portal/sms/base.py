"""What every SMS provider is: the protocol and its one error."""
from __future__ import annotations

from typing import Protocol


class SmsError(Exception):
    """The provider did not accept the message."""


class SmsProvider(Protocol):
    """Sends one text message and returns the provider's id for it; raises SmsError."""

    def send(self, to: str, body: str) -> str:
        """Send body to the phone number `to`."""
