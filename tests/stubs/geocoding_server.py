"""A local stand-in for Google's and Yandex's geocoding endpoints, served over real HTTP from a thread.

Google: GET /maps/api/geocode/json?address=&key=  -> 200 {"status": "OK"|"REQUEST_DENIED"|..., "results": [...]}
Yandex: GET /1.x/?apikey=&geocode=&format=json     -> 200 GeoObjectCollection, 403 for a bad key, 429 over quota

Keys in `valid_keys` get answers, keys in `over_quota_keys` are refused for quota, anything else is an
invalid key. `delay` makes every answer late (for timeouts); `requests` records what was asked.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from stubs.http_stub import send_json, serving

GOOD_GOOGLE_KEY = "AIzaSy-good-google-key-0001"
GOOD_YANDEX_KEY = "b7c1f0e2-good-yandex-key-0001"
QUOTA_KEY = "over-quota-key-0001"
# Where the stub places every address except NOWHERE (Bağdat Caddesi in Kadıköy).
PLACE = (40.963618, 29.066394)
NOWHERE = "Nowhere Street 0, Atlantis"


@dataclass
class SeenRequest:
    """One request the stub answered: the path and the query parameters."""

    path: str
    params: dict[str, str]


@dataclass
class GeocodingStub:
    """The stub's state, shared with the handler threads."""

    url: str = ""
    valid_keys: set[str] = field(default_factory=lambda: {GOOD_GOOGLE_KEY, GOOD_YANDEX_KEY})
    over_quota_keys: set[str] = field(default_factory=lambda: {QUOTA_KEY})
    delay: float = 0.0
    requests: list[SeenRequest] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)


def _google(stub: GeocodingStub, params: dict[str, str]) -> tuple[int, dict]:
    """Answer like Google's Geocoding API (errors come back as 200 with a status)."""
    key = params.get("key", "")
    if key in stub.over_quota_keys:
        return 200, {"status": "OVER_QUERY_LIMIT", "results": [],
                     "error_message": "You have exceeded your rate-limit for this API."}
    if key not in stub.valid_keys:
        return 200, {"status": "REQUEST_DENIED", "results": [], "error_message": "The provided API key is invalid."}
    address = params.get("address", "")
    if not address:
        return 200, {"status": "INVALID_REQUEST", "results": []}
    if address == NOWHERE:
        return 200, {"status": "ZERO_RESULTS", "results": []}
    lat, lng = PLACE
    return 200, {"status": "OK", "results": [{
        "formatted_address": "Bağdat Cd., Kadıköy/İstanbul, Türkiye",
        "geometry": {"location": {"lat": lat, "lng": lng}, "location_type": "GEOMETRIC_CENTER"},
        "place_id": "stub-place-1", "types": ["route"]}]}


def _yandex(stub: GeocodingStub, params: dict[str, str]) -> tuple[int, dict]:
    """Answer like Yandex's Geocoder API (errors are HTTP status codes with a JSON message)."""
    key = params.get("apikey", "")
    if key in stub.over_quota_keys:
        return 429, {"statusCode": 429, "error": "Too Many Requests", "message": "Limit is exceeded"}
    if key not in stub.valid_keys:
        return 403, {"statusCode": 403, "error": "Forbidden", "message": "Invalid api key"}
    if params.get("format") != "json" or not params.get("geocode"):
        return 400, {"statusCode": 400, "error": "Bad Request", "message": "Parameter geocode is required"}
    members = []
    if params["geocode"] != NOWHERE:
        lat, lng = PLACE
        members.append({"GeoObject": {
            "metaDataProperty": {"GeocoderMetaData": {"kind": "street", "precision": "street",
                                                      "text": "Türkiye, İstanbul, Kadıköy, Bağdat Caddesi"}},
            "name": "Bağdat Caddesi", "description": "Kadıköy, İstanbul, Türkiye",
            "Point": {"pos": f"{lng} {lat}"}}})
    return 200, {"response": {"GeoObjectCollection": {
        "metaDataProperty": {"GeocoderResponseMetaData": {"request": params["geocode"], "found": str(len(members)),
                                                          "results": "1"}},
        "featureMember": members}}}


def _handler(stub: GeocodingStub) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to the stub's state."""

    class Handler(BaseHTTPRequestHandler):
        """Routes the two providers' paths."""

        def do_GET(self):  # noqa: N802 (the name http.server calls)
            """Answer a geocoding request, late when the stub has a delay."""
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            stub.requests.append(SeenRequest(parts.path, params))
            if stub.delay and stub.stopping.wait(stub.delay):
                return
            if parts.path == "/maps/api/geocode/json":
                status, body = _google(stub, params)
            elif parts.path in ("/1.x/", "/1.x"):
                status, body = _yandex(stub, params)
            else:
                status, body = 404, {"error": "Not Found"}
            send_json(self, status, body, "application/json; charset=utf-8")

        def log_message(self, format, *args):  # noqa: A002 (signature of http.server)
            """Stay quiet."""

    return Handler


@pytest.fixture
def geocoding_stub():
    """A running geocoding stub for one test."""
    stub = GeocodingStub()
    with serving(stub, _handler(stub), "geocoding-stub"):
        yield stub
