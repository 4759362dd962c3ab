"""The stock engines the OMS can ask for physical stock, and the connection test each one answers.

Each engine says which credentials it needs and how it authenticates; `probe()` makes one real HTTP
request to the engine's health (or metadata) URL and turns the outcome into words an admin understands.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from flask_babel import gettext as _
from flask_babel import ngettext

from portal import outbound
from portal.i18n import N_

NO_AUTH = "none"
BASIC_AUTH = "basic"
TOKEN_AUTH = "token"


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of a connection test: ok or not, a message, the HTTP status when there was one."""

    ok: bool
    message: str
    status: int | None = None
    elapsed_ms: int | None = None


@dataclass(frozen=True)
class StockEngine:
    """A kind of stock service: its credentials, how it authenticates, and where its health check lives.

    name, description and password_label are plain English (marked with N_): screens translate them with _().
    """

    type: str
    name: str
    description: str
    credentials: tuple[str, ...]  # which of "username", "password" the engine needs
    auth: str
    probe_path: str
    password_label: str = N_("Password")

    @property
    def requires_credentials(self) -> bool:
        """True when the engine cannot be called without credentials."""
        return bool(self.credentials)

    def as_json(self) -> dict:
        """The engine as the available-stock-engines endpoint lists it."""
        return {"type": self.type, "name": self.name, "requires_credentials": self.requires_credentials,
                "credentials": list(self.credentials)}

    def probe_url(self, url: str) -> str:
        """The URL the connection test calls."""
        return url.rstrip("/") + self.probe_path

    def probe(self, url: str, username: str, password: str, *, timeout: float,
              policy: outbound.Policy | None = None) -> ProbeResult:
        """Call the engine once and describe what happened; never raises for network trouble.

        The call goes through the SSRF guard (policy: the current app's unless given): a refused address gets
        the one refusal message, before any connection is made, whatever is (or is not) listening there.
        """
        policy = outbound.current_policy() if policy is None else policy
        target = self.probe_url(url)
        headers = {"Accept": "application/json"}
        auth = None
        if self.auth == BASIC_AUTH:
            auth = (username, password)
        elif self.auth == TOKEN_AUTH:
            headers["Authorization"] = f"Token {password}"
        started = time.monotonic()
        http = outbound.guarded_session(policy)
        try:
            # Redirects are not followed: credentials must not be replayed to another address.
            response = http.get(target, headers=headers, auth=auth, timeout=timeout, allow_redirects=False)
        except outbound.BlockedAddress:
            return ProbeResult(False, outbound.refusal_message(url))
        except requests.Timeout:
            return ProbeResult(False, _("The stock service did not answer within %(duration)s.",
                                        duration=_seconds(timeout)))
        except requests.exceptions.SSLError:
            return ProbeResult(False, _("The TLS certificate of %(host)s could not be verified.", host=_host(target)))
        except requests.ConnectionError as exc:
            return ProbeResult(False, _("Could not connect to %(host)s: %(reason)s.", host=_host(target),
                                        reason=_connection_reason(exc)))
        except requests.RequestException as exc:
            return ProbeResult(False, _("The request to %(host)s failed (%(error)s).", host=_host(target),
                                        error=exc.__class__.__name__))
        finally:
            http.close()
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return self._describe(response, target, elapsed_ms, policy)

    def _describe(self, response: requests.Response, target: str, elapsed_ms: int,
                  policy: outbound.Policy | None = None) -> ProbeResult:
        """Turn an HTTP answer into a result; a redirect to an address the guard refuses says so, plainly."""
        policy = outbound.current_policy() if policy is None else policy
        status = response.status_code
        location = response.headers.get("Location")
        if 300 <= status < 400 and location is not None:
            absolute = urljoin(target, location)
            if not outbound.allowed(absolute, policy):
                return ProbeResult(False, outbound.refusal_message(absolute), status, elapsed_ms)
        if 200 <= status < 300:
            return ProbeResult(True, _("Connected: HTTP %(status)s in %(ms)s ms.", status=status, ms=elapsed_ms),
                               status, elapsed_ms)
        if status == 401 and self.auth == TOKEN_AUTH:
            message = _("The stock service refused the credentials (HTTP 401). Check the token.")
        elif status == 401:
            message = _("The stock service refused the credentials (HTTP 401). Check the username and password.")
        elif status == 403:
            message = _("The stock service accepted the login but denies access to stock (HTTP 403).")
        elif status == 404:
            message = _("Nothing answers at %(url)s (HTTP 404). Check the URL.", url=target)
        elif 300 <= status < 400:
            message = _("The stock service redirects to %(location)s (HTTP %(status)s). Use that URL instead.",
                        location=_("another address") if location is None else location, status=status)
        elif status >= 500:
            message = _("The stock service has a problem of its own (HTTP %(status)s). Try again later.", status=status)
        else:
            message = _("The stock service refused the request (HTTP %(status)s).", status=status)
        return ProbeResult(False, message, status, elapsed_ms)


def _seconds(timeout: float) -> str:
    """5 -> "5 seconds", 0.5 -> "0.5 seconds", 1 -> "1 second" (in the current locale)."""
    text = f"{timeout:g}"
    # The plural form follows the whole number; a fraction takes the form of 2 ("0.5 seconds").
    count = int(timeout) if float(timeout).is_integer() else 2
    return ngettext("%(seconds)s second", "%(seconds)s seconds", count, seconds=text)


def _host(url: str) -> str:
    """host:port of a URL, for messages."""
    parts = urlsplit(url)
    return parts.netloc or url


def _connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in words (translated): refused, unknown host, TLS, or no answer."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return _("the connection was refused")
        if isinstance(seen, socket.gaierror):
            return _("the host name is unknown")
        if isinstance(seen, ssl.SSLError):
            return _("the TLS handshake failed")
        seen = seen.__cause__ or seen.__context__
    return _("no answer")


ENGINES: dict[str, StockEngine] = {engine.type: engine for engine in (
    StockEngine("omnitron", N_("Omnitron stock"), N_("Stock as Omnitron keeps it; the OMS machine reaches it without "
                "credentials."), (), NO_AUTH, "/health/"),
    StockEngine("basic_auth_rest", N_("REST service with basic auth"), N_("A brand's own REST stock service behind "
                "HTTP basic authentication."), ("username", "password"), BASIC_AUTH, "/health/"),
    StockEngine("token_rest", N_("REST service with a token"), N_("A REST stock service that takes an API token "
                "(sent as Authorization: Token ...)."), ("password",), TOKEN_AUTH, "/health/", N_("Token")),
    StockEngine("sap", N_("SAP (OData)"), N_("SAP S/4HANA material stock through the API_MATERIAL_STOCK_SRV OData "
                "service, with a technical user."), ("username", "password"), BASIC_AUTH,
                "/sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/$metadata"),
)}


def get_engine(engine_type: str) -> StockEngine | None:
    """The engine of this type, or None."""
    return ENGINES.get(engine_type)
