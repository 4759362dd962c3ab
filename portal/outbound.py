"""One SSRF guard for every outbound URL: stock engines, geocoding, cargo, Omnitron and webhooks.

A URL someone can enter (an admin in a form or the API, an operator in the environment) must not turn the
portal into a probe of its own network. So, unless a setting allows it:

- at save time (check_url) the host is resolved and every address it resolves to must be public;
- at connect time (guarded_session) the host is resolved again, every address is vetted BEFORE a socket
  is opened, and the connection goes to a vetted address (pinned: a DNS answer that changes between the
  check and the connect cannot move it inward). The peer is checked once more after connecting;
- redirects are checked the same way (each hop opens its own guarded connection), proxies and .netrc from
  the environment are ignored.

A refused target always gets the same plain message (refusal_message), whatever the reason and whether
anything listens there: nothing is sent, not even a TCP SYN, so the answer reveals nothing of the network.

Exceptions, by setting (Policy):
- OUTBOUND_ALLOW_PRIVATE_TARGETS (default off): any address is allowed (the demo and the test suite);
- OUTBOUND_ALLOWED_HOSTS: exact "host:port" (or "host" for any port) entries allowed whatever they resolve
  to, e.g. an Omnitron on the brand's private network: "omnitron.brand.internal:443,10.0.4.7:8000".
Webhooks keep their own switch, WEBHOOK_ALLOW_PRIVATE_TARGETS (portal/webhooks/ssrf.py).
"""
from __future__ import annotations

import heapq
import ipaddress
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests
from flask import current_app, has_app_context
from flask_babel import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from portal.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list]

ALLOW_PRIVATE_SETTING = "OUTBOUND_ALLOW_PRIVATE_TARGETS"
ALLOWED_HOSTS_SETTING = "OUTBOUND_ALLOWED_HOSTS"

# Cloud instance metadata services: the classic SSRF prize.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


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
    """Why an address may not be connected to (e.g. "a loopback address"), or None when it is public."""
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


def parse_allowed_hosts(value: object) -> frozenset[str]:
    """OUTBOUND_ALLOWED_HOSTS as a set of lower-case "host:port" / "host" entries (IPv6 as "[::1]:8000").

    Accepts a comma- or space-separated string or a list of strings.
    """
    if not value:
        return frozenset()
    items: Iterable[object] = value.replace(",", " ").split() if isinstance(value, str) else value  # type: ignore[assignment]
    return frozenset(str(item).strip().lower().rstrip("/") for item in items if str(item).strip())


@dataclass(frozen=True)
class Policy:
    """What the guard lets through besides public addresses.

    allow_private: every address; allowed_hosts: exact host:port (or host) entries; setting: the switch named
    in detailed (log) messages.
    """

    allow_private: bool = False
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    setting: str = ALLOW_PRIVATE_SETTING

    def allows_host(self, host: str, port: int | None) -> bool:
        """True when the host (as written in the URL) is let through whatever it resolves to."""
        if self.allow_private:
            return True
        if not self.allowed_hosts:
            return False
        name = host.strip("[]").rstrip(".").lower()
        shown = f"[{name}]" if ":" in name else name
        return shown in self.allowed_hosts or (port is not None and f"{shown}:{port}" in self.allowed_hosts)


STRICT = Policy()


def _environment() -> dict[str, object]:
    """The two settings as the process environment gives them (what an app's Config would read)."""
    flag = os.environ.get(ALLOW_PRIVATE_SETTING, "").strip().lower() in {"1", "true", "yes", "on"}
    return {ALLOW_PRIVATE_SETTING: flag, ALLOWED_HOSTS_SETTING: os.environ.get(ALLOWED_HOSTS_SETTING, "")}


def policy_from_config(config: Mapping[str, Any]) -> Policy:
    """The policy of the admin- and operator-entered URLs (stock engines, geocoding, cargo, Omnitron).

    A setting missing from `config` (a plain dict rather than an app's config) is read from the environment.
    """
    environment = _environment()
    allow = config[ALLOW_PRIVATE_SETTING] if ALLOW_PRIVATE_SETTING in config else environment[ALLOW_PRIVATE_SETTING]
    hosts = config[ALLOWED_HOSTS_SETTING] if ALLOWED_HOSTS_SETTING in config else environment[ALLOWED_HOSTS_SETTING]
    return Policy(bool(allow), parse_allowed_hosts(hosts))


def current_policy() -> Policy:
    """The current app's policy; outside an app context, the environment's (strict unless it says otherwise)."""
    return policy_from_config(current_app.config if has_app_context() else {})


class BlockedAddress(Exception):
    """A connection was refused before it was made: the host is (or resolves to) a forbidden address.

    str() gives the detailed reason, for logs and the webhook delivery log; screens for admin-entered URLs
    show refusal_message() instead, the same whatever the reason.
    """

    def __init__(self, host: str, address: str | None, reason: str, setting: str = ALLOW_PRIVATE_SETTING):
        self.host, self.address, self.reason = host, address, reason
        if address is None:
            text = _("Refused to connect to %(host)s: %(reason)s.", host=host, reason=reason)
        else:
            text = _("Refused to connect to %(host)s at %(peer)s: %(reason)s (%(setting)s is off).", host=host,
                     peer=address, reason=reason, setting=setting)
        super().__init__(text)


def refusal_message(url: str) -> str:
    """The one answer for a refused target, whatever the reason (no oracle of what is there)."""
    return _("This address is not allowed: %(url)s. The portal connects only to public internet addresses; "
             "an operator can allow others with OUTBOUND_ALLOWED_HOSTS.", url=display_url(url))


def display_url(url: str) -> str:
    """scheme://host:port/path of a URL: never its query, which may carry an API key."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "?"
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url[:200]


def vet_host(host: str, port: int | None, policy: Policy, *, resolver: Resolver | None = None) -> list[str] | None:
    """The addresses of host a connection may go to, or None when the policy lets the host through as it is.

    Raises BlockedAddress when the host cannot be resolved or ANY of its addresses is forbidden (a name that
    resolves to a public and a private address could be made to connect to either).
    """
    if policy.allows_host(host, port):
        return None
    name = host.strip("[]").rstrip(".")
    try:
        infos = (resolver or socket.getaddrinfo)(name, port or 80, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise BlockedAddress(host, None, _("the host name cannot be resolved"), policy.setting) from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BlockedAddress(host, None, _("the host name cannot be resolved"), policy.setting)
    for address in addresses:
        try:
            reason = forbidden_reason(address)
        except ValueError:
            reason = _("not an internet address")
        if reason:
            raise BlockedAddress(host, address, reason, policy.setting)
    return addresses


def check_url(url: object, policy: Policy, *, field: str = "url", resolver: Resolver | None = None,
              max_length: int = 2000) -> str:
    """Check a URL someone entered and return it trimmed; raises ValidationFailed on `field`.

    Only http and https with a host and no user:password part; unless the policy lets the host through, every
    address the host resolves to must be public. A refused address gets refusal_message(), whatever the reason.
    """
    def refuse(message: str) -> NoReturn:
        """Raise the validation error."""
        raise ValidationFailed(message, field=field)

    if not isinstance(url, str) or not url.strip():
        refuse(_("The URL is required."))
    url = url.strip()
    if len(url) > max_length:
        refuse(_("The URL is too long (at most %(limit)s characters).", limit=max_length))
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        refuse(_("The URL cannot contain spaces or control characters."))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates the port number
    except ValueError:
        refuse(_("The URL is not valid."))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        refuse(_("The URL must start with http:// or https:// and name a host."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        refuse(_("Put no user name or password in the URL."))
    ensure_allowed(url, policy, field=field, resolver=resolver)
    return url


def ensure_allowed(url: str, policy: Policy, *, field: str = "url", resolver: Resolver | None = None) -> None:
    """Raise ValidationFailed(refusal_message) on `field` unless the URL's host may be connected to.

    For a URL whose syntax is already checked (http or https with a host).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        raise ValidationFailed(refusal_message(url), field=field) from None
    try:
        vet_host(host, port or (443 if parts.scheme.lower() == "https" else 80), policy, resolver=resolver)
    except BlockedAddress:
        raise ValidationFailed(refusal_message(url), field=field) from None


def allowed(url: str, policy: Policy) -> bool:
    """True when a connection to the URL's host would pass the guard (e.g. a redirect's Location)."""
    try:
        ensure_allowed(url, policy)
    except ValidationFailed:
        return False
    return True


def _check_peer(sock: socket.socket, host: str, setting: str) -> None:
    """Close the socket and raise BlockedAddress when it is connected to a forbidden address."""
    try:
        peer = str(sock.getpeername()[0])
        reason = forbidden_reason(peer)
    except (OSError, ValueError):
        reason, peer = _("not an internet address"), "?"
    if reason:
        sock.close()
        raise BlockedAddress(host, peer, reason, setting)


class Send:
    """One request under a total deadline (see deadline()): which connection it uses, and whether time ran out."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.connection: HTTPConnection | None = None
        self.done = False
        self.expired = False

    def attach(self, connection: HTTPConnection) -> None:
        """The connection this request goes out on (a late one, after the deadline, is refused at once)."""
        with self.lock:
            if self.expired:
                raise TimeoutError("the request's total deadline has passed")
            self.connection = connection

    def expire(self) -> None:
        """The deadline passed: shut the connection down, so a read that keeps getting a byte now and then ends."""
        with self.lock:
            if self.done:
                return
            self.expired = True
            sock = self.connection.sock if self.connection is not None else None
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS
            except OSError:
                pass


class _Watchdog:
    """One thread that expires the sends whose deadline has passed (started on first use, again after a fork)."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """Fresh state (a forked child has no watchdog thread, and its lock may have been held at the fork)."""
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, Send]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, send: Send) -> None:
        """Expire this send at its deadline unless it is done by then."""
        with self._wake:
            heapq.heappush(self._due, (send.deadline, next(self._order), send))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbound-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _next_expired(self) -> Send:
        """Wait for the next send whose deadline passes while it is still going."""
        with self._wake:
            while True:
                while self._due and self._due[0][2].done:
                    heapq.heappop(self._due)
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    return heapq.heappop(self._due)[2]
                self._wake.wait(self._due[0][0] - now if self._due else None)

    def _run(self) -> None:
        """Expire sends as their deadlines pass, for as long as the process lives."""
        while True:
            self._next_expired().expire()


_watchdog = _Watchdog()
_current = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[Send]:
    """Bound a whole request made in this block on this thread (through guarded_session) to `seconds`.

    requests' timeout bounds each connect and each read; a peer that sends a byte now and then never trips it.
    At the deadline the connection is shut down, so the request fails at once; `send.expired` tells why.
    """
    send = Send(seconds)
    _current.send = send
    _watchdog.watch(send)
    try:
        yield send
    finally:
        with send.lock:
            send.done = True
        _current.send = None


class _TrackedMixin:
    """Connection behaviour: tell the thread's deadline (if any) which connection a request goes out on."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """Attach to the current deadline, then send as usual."""
        send: Send | None = getattr(_current, "send", None)
        if send is not None:
            send.attach(self)  # type: ignore[arg-type]
        return super().request(*args, **kwargs)  # type: ignore[misc]


class TrackedHTTPConnection(_TrackedMixin, HTTPConnection):
    """An http connection that a deadline can shut down."""


class TrackedHTTPSConnection(_TrackedMixin, HTTPSConnection):
    """An https connection that a deadline can shut down."""


class _GuardMixin:
    """Connection behaviour: vet the host's addresses before connecting, pin the connection to them, check
    the peer afterwards. Needs `policy` set on the class (guarded_session builds such classes)."""

    policy: Policy = STRICT
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        """Resolve and vet, then connect to a vetted address (never to a fresh DNS answer)."""
        vetted = vet_host(self._dns_host, self.port, self.policy)
        if vetted is None:
            return super()._new_conn()  # type: ignore[misc]
        name = self._dns_host
        last: Exception | None = None
        for address in vetted:
            self._dns_host = address  # only create_connection reads it; TLS still checks the host name
            try:
                sock = super()._new_conn()  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - try the next vetted address, re-raise the last failure
                last = exc
                continue
            finally:
                self._dns_host = name
            _check_peer(sock, name, self.policy.setting)
            return sock
        assert last is not None
        raise last


class GuardedHTTPConnection(_GuardMixin, TrackedHTTPConnection):
    """An http connection to vetted addresses only."""


class GuardedHTTPSConnection(_GuardMixin, TrackedHTTPSConnection):
    """An https connection to vetted addresses only (checked before the TLS handshake)."""


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose pools make guarded connections under one policy."""

    def __init__(self, policy: Policy, **kwargs: Any):
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager with guarded pools for http and https."""
        super().init_poolmanager(*args, **kwargs)
        if self.policy.allow_private:  # nothing to vet; the connections can still be held to a deadline
            http_conn: type = TrackedHTTPConnection
            https_conn: type = TrackedHTTPSConnection
        else:
            http_conn = type("PolicyHTTPConnection", (GuardedHTTPConnection,), {"policy": self.policy})
            https_conn = type("PolicyHTTPSConnection", (GuardedHTTPSConnection,), {"policy": self.policy})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }


def guarded_session(policy: Policy | None = None) -> requests.Session:
    """A requests session whose every connection (redirect hops included) passes the guard.

    No proxies or .netrc from the environment: a proxy would make the proxy, not the target, the checked peer.
    With allow_private nothing is vetted (the demo and tests).
    """
    policy = current_policy() if policy is None else policy
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(policy, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
