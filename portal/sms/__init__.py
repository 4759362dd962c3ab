"""SMS providers, chosen by SMS_PROVIDER: console (default), memory (tests) or twilio."""
from __future__ import annotations

import itertools
import sys
import textwrap
import threading
from dataclasses import dataclass

from portal.sms.base import SmsError, SmsProvider
from portal.sms.twilio import TwilioSmsProvider

__all__ = ["ConsoleSmsProvider", "MemorySmsProvider", "SentSms", "SmsError", "SmsProvider", "TwilioSmsProvider",
           "get_provider"]


class ConsoleSmsProvider:
    """Prints each message to standard output: the development default."""

    _ids = itertools.count(1)

    def send(self, to: str, body: str) -> str:
        """Print the message as a block that stands out from log lines (see console_block)."""
        message_id = f"console-{next(self._ids)}"
        print(console_block(message_id, to, body), file=sys.stdout, flush=True)
        return message_id


def console_block(message_id: str, to: str, body: str, width: int = 72) -> str:
    """An SMS as the console provider prints it: a framed block, the body wrapped at width.

    ┌─ SMS console-3 to +90 531 234 5678
    │ Your code for order ORD100007 is 123456. Show it at Kadıköy Store.
    └─
    The first line keeps "[SMS console-N]"-style greps working: it names the message id and the number.
    """
    lines = textwrap.wrap(body, width) or [""]
    return "\n".join([f"┌─ SMS {message_id} to {to}", *(f"│ {line}" for line in lines), "└─"])


@dataclass
class SentSms:
    """A message the memory provider accepted."""

    id: str
    to: str
    body: str


class MemorySmsProvider:
    """Keeps messages in a list, like Django's locmem mail backend. `fail_with` makes it refuse."""

    outbox: list[SentSms] = []
    fail_with: str | None = None
    _lock = threading.Lock()
    _ids = itertools.count(1)

    def send(self, to: str, body: str) -> str:
        """Store the message, or raise SmsError when told to fail."""
        if MemorySmsProvider.fail_with:
            raise SmsError(MemorySmsProvider.fail_with)
        with self._lock:
            sms = SentSms(id=f"memory-{next(self._ids)}", to=to, body=body)
            MemorySmsProvider.outbox.append(sms)
        return sms.id

    @classmethod
    def reset(cls) -> None:
        """Forget every message and stop failing."""
        cls.outbox.clear()
        cls.fail_with = None


def get_provider(app) -> SmsProvider:
    """The provider configured by SMS_PROVIDER, built once per app."""
    provider = app.extensions.get("sms_provider")
    if provider is None:
        name = app.config["SMS_PROVIDER"]
        if name == "console":
            provider = ConsoleSmsProvider()
        elif name == "memory":
            provider = MemorySmsProvider()
        elif name == "twilio":
            provider = TwilioSmsProvider.from_config(app.config)
        else:
            raise SmsError(f"Unknown SMS_PROVIDER {name!r}; use console, memory or twilio.")
        app.extensions["sms_provider"] = provider
    return provider
