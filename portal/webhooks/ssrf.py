"""SSRF protection for webhook targets: checked when a URL is saved and again on every connection.

The guard itself is portal.outbound (shared with every other outbound URL); webhooks keep their own switch,
WEBHOOK_ALLOW_PRIVATE_TARGETS, and their detailed save-time reasons: a brand manager's target URL is refused
with the kind of address it is (the addresses are classified without connecting, so nothing about what
listens there is revealed).

At save time the host is resolved and every address it resolves to must be public. Because DNS can
change afterwards (or answer differently per query), the HTTP session built by guarded_session()
resolves the host again and vets every address before a socket is opened, connects only to a vetted
address, and checks the peer once more before a byte is sent (and before the TLS handshake). Redirects
are never followed, so a receiver cannot bounce a delivery inward either.
"""
from __future__ import annotations

import socket
from collections.abc import Callable
from typing import NoReturn
from urllib.parse import urlsplit

import requests
from flask_babel import gettext as _

from portal import outbound
from portal.errors import ValidationFailed
from portal.outbound import BlockedAddress, forbidden_reason

__all__ = ["SETTING", "BlockedAddress", "forbidden_reason", "guarded_session", "validate_target_url"]

SETTING = "WEBHOOK_ALLOW_PRIVATE_TARGETS"

Resolver = Callable[..., list]


def validate_target_url(url: object, allow_private: bool, *, resolver: Resolver | None = None) -> str:
    """Check a webhook target URL and return it trimmed; raises ValidationFailed (field target_url).

    Only http and https with a host and no user:password part. Unless allow_private, the host must
    resolve, and every address it resolves to must be public (see forbidden_reason).
    """
    def refuse(message: str) -> NoReturn:
        """Raise the validation error for the target URL."""
        raise ValidationFailed(message, field="target_url")

    if not isinstance(url, str) or not url.strip():
        refuse(_("Enter the target URL."))
    url = url.strip()
    if len(url) > 2000:
        refuse(_("The target URL is too long (at most 2000 characters)."))
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        refuse(_("The target URL cannot contain spaces or control characters."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        refuse(_("The target URL is not valid: %(exc)s.", exc=exc))
    if parts.scheme.lower() not in ("http", "https"):
        refuse(_("Only http:// and https:// target URLs are accepted."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        refuse(_("Put no user name or password in the URL; use additional headers for credentials."))
    host = parts.hostname
    if not host:
        refuse(_("The target URL needs a host name."))
    if parts.fragment:
        refuse(_("The target URL cannot have a #fragment."))
    if allow_private:
        return url
    try:
        infos = (resolver or socket.getaddrinfo)(host, port or (443 if parts.scheme == "https" else 80),
                                                 type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        refuse(_("The host %(host)s cannot be resolved.", host=host))
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        refuse(_("The host %(host)s cannot be resolved.", host=host))
    for address in addresses:
        reason = forbidden_reason(address)
        if reason:
            shown = host if host == address.split("%")[0] else f"{host} ({address})"
            refuse(_("%(host)s is %(reason)s; webhooks only go to public internet addresses.", host=shown,
                     reason=reason))
    return url


def guarded_session(allow_private: bool) -> requests.Session:
    """A requests session for deliveries (portal.outbound's guard): no proxies or .netrc from the environment;
    addresses vetted before connecting and pinned, unless allow_private."""
    return outbound.guarded_session(outbound.Policy(allow_private, setting=SETTING))
