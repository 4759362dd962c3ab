"""The HTTP client for Omnitron: token login, timeouts, retries with backoff, and streamed pagination.

One client per job or request: it keeps a requests.Session and the token, neither of which is shared
safely between threads.
"""
from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from flask_babel import gettext as _

from portal import outbound
from portal.omnitron.errors import (
    OmnitronAuthError,
    OmnitronBadResponse,
    OmnitronError,
    OmnitronForbidden,
    OmnitronNotAllowed,
    OmnitronNotFound,
    OmnitronServerError,
    OmnitronTimeout,
    OmnitronUnreachable,
)

log = logging.getLogger("portal.omnitron")

LOGIN_PATH = "/api/v1/auth/login/"
HEALTH_PATH = "/api/v1/health/"
STOCK_ENGINES_PATH = "/api/v1/oms/setup/product-stock-integration/available-stock-engines/"
# The address tree, parents first: a sync must create a city before the townships that point at it.
ADDRESS_PATHS = {
    "country": "/api/v1/countries/",
    "city": "/api/v1/cities/",
    "township": "/api/v1/townships/",
    "district": "/api/v1/districts/",
}
STOCK_LOCATIONS_PATH = "/api/v1/stock_locations/"
CHANNELS_PATH = "/api/v1/channels/"
ORDERS_PATH = "/api/v1/orders/"
# check_login reads one record of this to prove the user may use the API, not only log in.
PERMISSION_PROBE_PATH = CHANNELS_PATH

DEFAULT_TIMEOUT = (5.0, 30.0)
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000  # Omnitron caps ?limit= here; asking for more silently returns 1000
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class Page:
    """One page of a list: its number, the total count across pages, and its records."""

    number: int
    count: int
    results: list[dict]
    next_page: int | None
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the whole list has at this page size."""
        return max(1, -(-self.count // self.page_size))


@dataclass(frozen=True)
class LoginResult:
    """A successful login check: who logged in and how long the login took."""

    username: str
    latency_ms: float


def _connection_reason(exc: BaseException) -> str:
    """A few words (translated) on why a connection failed, found anywhere in the exception's chain."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        error = stack.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ConnectionRefusedError):
            return _("connection refused")
        if isinstance(error, socket.gaierror):
            return _("the host name could not be resolved")
        if isinstance(error, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                              http.client.IncompleteRead)):
            return _("the connection was closed before Omnitron answered")
        if isinstance(error, ssl.SSLError):
            return _("the TLS handshake failed")
        # urllib3 keeps the cause in .reason (MaxRetryError) or in args; Python in __cause__/__context__.
        nested = [getattr(error, "reason", None), error.__cause__, error.__context__, *getattr(error, "args", ())]
        stack.extend(e for e in nested if isinstance(e, BaseException))
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _("the connection was closed before Omnitron finished answering")
    return exc.__class__.__name__


def _detail(response: requests.Response) -> str:
    """Omnitron's own explanation of an error ({"detail": ...} or field errors), shortened."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        text = body.get("detail") or "; ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in body.items())
    else:
        text = str(body)
    return str(text)[:200]


class OmnitronClient:
    """Talks to one Omnitron over HTTP with a username and password.

    `timeout` is (connect, read) seconds or one number for both. Failed calls are retried `retries`
    times with exponential backoff (backoff, 2*backoff, 4*backoff ... seconds) on 5xx answers and
    connection errors, never on 4xx. Read timeouts are not retried unless `retry_timeouts` is set:
    a server too slow to answer once is usually too slow again, and each retry adds a full timeout.
    Every failure raises an OmnitronError subclass.
    """

    def __init__(self, base_url: str, username: str, password: str,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, retries: int = 3, backoff: float = 0.5,
                 session: requests.Session | None = None, *, retry_timeouts: bool = False,
                 policy: outbound.Policy | None = None):
        base_url = (base_url or "").strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise OmnitronError(_("OMNITRON_URL must be an http:// or https:// address, not %(url)s.",
                                  url=repr(base_url)))
        self.base_url = base_url
        self.username = username or ""
        self._password = password or ""
        self.timeout = timeout if isinstance(timeout, tuple) else (float(timeout), float(timeout))
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.retry_timeouts = retry_timeouts
        self._owns_session = session is None
        # Every connection passes the SSRF guard (policy: the current app's unless given).
        self.session = session or outbound.guarded_session(policy)
        self._token: str | None = None

    @classmethod
    def from_config(cls, config: Mapping, username: str, password: str,
                    session: requests.Session | None = None) -> OmnitronClient:
        """Build a client from the OMNITRON_* settings and the stored credentials."""
        timeout = (float(config.get("OMNITRON_CONNECT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT[0])),
                   float(config.get("OMNITRON_TIMEOUT_SECONDS", DEFAULT_TIMEOUT[1])))
        return cls(config.get("OMNITRON_URL", ""), username, password, timeout=timeout,
                   retries=int(config.get("OMNITRON_RETRIES", 3)),
                   backoff=float(config.get("OMNITRON_BACKOFF_SECONDS", 0.5)), session=session,
                   policy=outbound.policy_from_config(config))

    def __repr__(self) -> str:
        """The URL and user, never the password or token."""
        return f"<OmnitronClient {self.base_url} as {self.username!r}>"

    def __enter__(self) -> OmnitronClient:
        """Use as a context manager that closes the session."""
        return self

    def __exit__(self, *exc_info) -> None:
        """Close the session on leaving the block."""
        self.close()

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._owns_session:
            self.session.close()

    def ping(self) -> float:
        """Milliseconds the health endpoint took to answer (no login, no retry: a check shows the truth now).

        Raises OmnitronUnreachable, OmnitronServerError or another OmnitronError.
        """
        started = time.perf_counter()
        response = self._request("GET", HEALTH_PATH, authenticated=False, retries=0)
        elapsed = (time.perf_counter() - started) * 1000
        self._check(response, "GET", HEALTH_PATH)
        return round(elapsed, 1)

    def check_login(self) -> LoginResult:
        """Log in afresh and read one record, proving the credentials and the user's permission.

        Raises OmnitronAuthError (wrong username or password), OmnitronForbidden (no permission),
        OmnitronUnreachable and the other OmnitronErrors.
        """
        self._token = None
        started = time.perf_counter()
        self._login()
        latency = round((time.perf_counter() - started) * 1000, 1)
        self.get(PERMISSION_PROBE_PATH, params={"limit": 1})
        return LoginResult(self.username, latency)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a path (relative to the base URL) and return its JSON. Raises an OmnitronError."""
        response = self._request("GET", path, params=params)
        self._check(response, "GET", path)
        return self._json(response, path)

    def count(self, path: str, params: Mapping[str, Any] | None = None) -> int:
        """How many records a list has (one tiny page is fetched). Raises an OmnitronError."""
        return next(self.iter_pages(path, page_size=1, params=params)).count

    def iter_pages(self, path: str, page_size: int = DEFAULT_PAGE_SIZE, params: Mapping[str, Any] | None = None,
                   start_page: int = 1) -> Iterator[Page]:
        """Yield a list's pages one at a time, from start_page to the last; only one page is held in memory.

        A sync can resume after a crash by passing the page after the last one it committed.
        Raises an OmnitronError (OmnitronNotFound if start_page is past the end).
        """
        page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        number = max(1, int(start_page))
        while True:
            body = self.get(path, params={**(params or {}), "page": number, "limit": page_size})
            if (not isinstance(body, dict) or not isinstance(body.get("results"), list)
                    or not isinstance(body.get("count"), int)):
                raise OmnitronBadResponse(
                    _("Omnitron's answer to %(path)s is not a page of results (count, next, results). "
                      "Check OMNITRON_URL points at Omnitron's API.", path=path), url=self._url(path))
            # An empty page with a next link would loop forever; treat it as the end.
            has_next = bool(body.get("next")) and bool(body["results"])
            yield Page(number, body["count"], body["results"], number + 1 if has_next else None, page_size)
            if not has_next:
                return
            number += 1

    def iter_records(self, path: str, page_size: int = DEFAULT_PAGE_SIZE,
                     params: Mapping[str, Any] | None = None) -> Iterator[dict]:
        """Yield every record of a list, fetching page by page. Raises an OmnitronError."""
        for page in self.iter_pages(path, page_size=page_size, params=params):
            yield from page.results

    def orders(self, *, statuses: list[str] | None = None, channels: list[int] | None = None,
               created_from: str | None = None, modified_from: str | None = None, exclude_test: bool = False,
               ordering: str = "modified_date", page_size: int = DEFAULT_PAGE_SIZE,
               start_page: int = 1) -> Iterator[Page]:
        """Yield pages of orders matching the filters, oldest change first; one page in memory at a time.

        statuses and channels: any of these (None or empty: all). created_from / modified_from: ISO
        timestamps, inclusive (a re-read of the boundary is expected; the caller skips what it has).
        Raises an OmnitronError.
        """
        params: dict[str, Any] = {"ordering": ordering}
        if statuses:
            params["status"] = ",".join(statuses)
        if channels:
            params["channel"] = ",".join(str(c) for c in channels)
        if created_from:
            params["created_date__gte"] = created_from
        if modified_from:
            params["modified_date__gte"] = modified_from
        if exclude_test:
            params["is_test"] = "false"
        yield from self.iter_pages(ORDERS_PATH, page_size=page_size, params=params, start_page=start_page)

    def stock_engines(self) -> list[dict]:
        """The stock engines for product stock integration: [{stock_engine_type, name, requires_credentials}].

        Raises an OmnitronError.
        """
        body = self.get(STOCK_ENGINES_PATH)
        items = body.get("results") if isinstance(body, dict) else body
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("stock_engine_type") for i in items):
            raise OmnitronBadResponse(_("Omnitron's list of stock engines is not in the expected form."),
                                      url=self._url(STOCK_ENGINES_PATH))
        return [{"stock_engine_type": str(i["stock_engine_type"]), "name": str(i.get("name") or i["stock_engine_type"]),
                 "requires_credentials": bool(i.get("requires_credentials", False))} for i in items]

    def _url(self, path: str) -> str:
        """The absolute URL of a path."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _login(self) -> str:
        """Exchange the username and password for a token and keep it. Raises OmnitronAuthError and others."""
        if not self.username or not self._password:
            raise OmnitronAuthError(_("No Omnitron username and password are set. Save them in "
                                      "OMNITRON_CLIENT_SETTINGS (setup step 7)."), url=self._url(LOGIN_PATH))
        response = self._request("POST", LOGIN_PATH, json={"username": self.username, "password": self._password},
                                 authenticated=False)
        if response.status_code in (400, 401, 403):
            raise OmnitronAuthError(
                _("Omnitron refused the username or password of %(username)s. Check the credentials in "
                  "OMNITRON_CLIENT_SETTINGS (setup step 7).", username=repr(self.username)),
                url=self._url(LOGIN_PATH), status=response.status_code)
        self._check(response, "POST", LOGIN_PATH)
        body = self._json(response, LOGIN_PATH)
        token = (body.get("key") or body.get("token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise OmnitronBadResponse(_("Omnitron's login answer has no token. Check OMNITRON_URL points at Omnitron."),
                                      url=self._url(LOGIN_PATH), status=response.status_code)
        self._token = token
        return token

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                 authenticated: bool = True, retries: int | None = None) -> requests.Response:
        """Send a request, logging in first if needed, retrying as configured, re-logging once on 401.

        Returns the response (any status below 500). Raises OmnitronUnreachable, OmnitronTimeout or
        OmnitronServerError once the retries are spent.
        """
        url = self._url(path)
        allowed = 1 + (self.retries if retries is None else retries)
        attempt = 0
        logged_in_again = False
        while True:
            attempt += 1
            headers = {"Accept": "application/json", "User-Agent": "oms-portal-omnitron-client"}
            if authenticated:
                headers["Authorization"] = f"Token {self._token or self._login()}"
            try:
                response = self.session.request(method, url, params=params, json=json, headers=headers,
                                                timeout=self.timeout)
            except outbound.BlockedAddress:
                # Never retried, and the same words whatever the reason: no oracle of what listens there.
                raise OmnitronNotAllowed(outbound.refusal_message(self.base_url), url=outbound.display_url(url)) \
                    from None
            except requests.ReadTimeout:
                failure: OmnitronError = OmnitronTimeout(
                    _("Omnitron at %(url)s did not answer %(method)s %(path)s within %(seconds)s s.",
                      url=self.base_url, method=method, path=path, seconds=format(self.timeout[1], "g")), url=url)
                retryable = self.retry_timeouts
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                reason = (_("no connection within %(seconds)s s", seconds=format(self.timeout[0], "g"))
                          if isinstance(exc, requests.ConnectTimeout) else _connection_reason(exc))
                failure = OmnitronUnreachable(
                    _("Omnitron at %(url)s cannot be reached (%(reason)s). Check OMNITRON_URL and that the "
                      "Omnitron machine is running.", url=self.base_url, reason=reason), url=url)
                retryable = True
            else:
                if response.status_code == 401 and authenticated and not logged_in_again:
                    # The token expired or was revoked: log in again once, without counting it as a retry.
                    logged_in_again = True
                    self._token = None
                    attempt -= 1
                    continue
                if response.status_code < 500:
                    return response
                failure = OmnitronServerError(
                    _("Omnitron answered %(status)s to %(method)s %(path)s; it may be down or overloaded. "
                      "Try again later.", status=response.status_code, method=method, path=path),
                    url=url, status=response.status_code)
                retryable = True
            if not retryable or attempt >= allowed:
                failure.attempts = attempt
                if attempt > 1:
                    failure.message = _("%(message)s (gave up after %(attempts)s attempts)", message=failure.message,
                                        attempts=attempt)
                    failure.args = (failure.message,)
                raise failure
            delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
            log.warning("Omnitron %s %s failed (%s); retry %d of %d in %.2f s", method, path,
                        failure.status or failure.code, attempt, allowed - 1, delay)
            time.sleep(delay)

    def _check(self, response: requests.Response, method: str, path: str) -> None:
        """Raise the OmnitronError matching a 4xx answer; return quietly on 2xx."""
        status = response.status_code
        if 200 <= status < 300:
            return
        url = self._url(path)
        detail = _detail(response)
        said = " " + _("Omnitron said: %(detail)s", detail=detail) if detail else ""
        if status == 401:
            raise OmnitronAuthError(_("Omnitron refused the login of %(username)s for %(path)s even after logging in "
                                      "again.%(said)s", username=repr(self.username), path=path, said=said),
                                    url=url, status=status)
        if status == 403:
            raise OmnitronForbidden(_("The Omnitron user %(username)s may not use %(path)s (403 Forbidden). Give it "
                                      "the needed permissions in Omnitron's back office.", username=repr(self.username),
                                      path=path), url=url, status=status)
        if status == 404:
            raise OmnitronNotFound(_("Omnitron has no %(path)s (404 Not Found). Check OMNITRON_URL, or the record no "
                                     "longer exists.%(said)s", path=path, said=said), url=url, status=status)
        raise OmnitronBadResponse(_("Omnitron refused %(method)s %(path)s (%(status)s).%(said)s", method=method,
                                    path=path, status=status, said=said), url=url, status=status)

    def _json(self, response: requests.Response, path: str) -> Any:
        """The JSON body of a response. Raises OmnitronBadResponse when it is not JSON."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "").split(";")[0].strip() or _("no content type")
            raise OmnitronBadResponse(
                _("Omnitron answered %(path)s with %(kind)s, not JSON. Check OMNITRON_URL points at Omnitron's API.",
                  path=path, kind=kind), url=self._url(path), status=response.status_code) from None
