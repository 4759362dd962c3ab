"""SSRF protection for webhook targets: checked when a URL is saved and again on every connection.

At save time the host is resolved and every address it resolves to must be public. Because DNS can
change afterwards (or answer differently per query), the HTTP session built by guarded_session()
checks the address each socket actually connected to, before a byte is sent (and before the TLS
handshake). Redirects are never followed, so a receiver cannot bounce a delivery inward either.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import NoReturn
from urllib.parse import urlsplit

import requests
from flask_babel import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from portal.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services: the classic SSRF prize.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(Exception):
    """A connection reached an address webhooks may not be sent to."""


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv6 one (IPv4-mapped, 6to4, NAT64, Teredo), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def forbidden_reason(address: str | IPAddress) -> str | None:
    """Why an address may not receive webhooks (e.g. "a loopback address"), or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = forbidden_reason(inner)
        return _("%(reason)s (inside %(ip)s)", reason=reason, ip=ip) if reason else None
    if ip in METADATA_ADDRESSES:
        return _("a cloud metadata address")
    checks = (
        (ip.is_unspecified, _("an unspecified address")),
        (ip.is_loopback, _("a loopback address")),
        (ip.is_link_local, _("a link-local address")),
        (ip.is_multicast, _("a multicast address")),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CARRIER_GRADE_NAT, _("a carrier-grade NAT address")),
        (ip.is_private, _("a private network address")),
        (ip.is_reserved, _("a reserved address")),
        (not ip.is_global, _("not a public internet address")),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


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


def _check_peer(sock: socket.socket, host: str) -> None:
    """Close the socket and raise BlockedAddress when it is connected to a forbidden address."""
    try:
        peer = sock.getpeername()[0]
        reason = forbidden_reason(peer)
    except (OSError, ValueError):
        reason, peer = _("not an internet address"), "?"
    if reason:
        sock.close()
        raise BlockedAddress(_("Refused to connect to %(host)s at %(peer)s: %(reason)s "
                               "(WEBHOOK_ALLOW_PRIVATE_TARGETS is off).", host=host, peer=peer, reason=reason))


class GuardedHTTPConnection(HTTPConnection):
    """An http connection that refuses forbidden peer addresses right after connecting."""

    def _new_conn(self) -> socket.socket:
        """Connect, then check where the socket really went."""
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class GuardedHTTPSConnection(HTTPSConnection):
    """An https connection that refuses forbidden peer addresses before the TLS handshake."""

    def _new_conn(self) -> socket.socket:
        """Connect, then check where the socket really went."""
        sock = super()._new_conn()
        _check_peer(sock, self.host)
        return sock


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    """A pool of guarded http connections."""

    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    """A pool of guarded https connections."""

    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections check the peer address of every new socket."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        """Build the pool manager with guarded pools for http and https."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPConnectionPool,
                                                   "https": GuardedHTTPSConnectionPool}


def guarded_session(allow_private: bool) -> requests.Session:
    """A requests session for deliveries: no proxies or .netrc from the environment; peers checked unless
    allow_private."""
    session = requests.Session()
    session.trust_env = False  # an HTTP(S)_PROXY would make the proxy, not the target, the checked peer
    if not allow_private:
        adapter = GuardedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session
