"""Geocoding clients for Google Maps and Yandex Maps: an address in, coordinates out, errors in plain words.

Each provider's host comes from configuration (GEOCODING_GOOGLE_BASE_URL, GEOCODING_YANDEX_BASE_URL) so
tests and air-gapped installs can point at a local server. The API key travels in the query string, as
both providers require, so error messages here never quote the URL or the request.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import requests
from flask_babel import gettext as _

from portal import outbound
from portal.errors import DomainError

SAMPLE_ADDRESS = "Bağdat Caddesi, Kadıköy, İstanbul"


@dataclass(frozen=True)
class Coordinates:
    """Where a provider placed an address: latitude, longitude and the provider's name for the place."""

    lat: float
    lng: float
    label: str = ""


class GeocodingError(DomainError):
    """A geocoding request failed; `kind` says why (invalid_key, quota, timeout, unreachable, not_found, ...)."""

    code = "geocoding_failed"
    http_status = 502

    INVALID_KEY = "invalid_key"
    QUOTA = "quota"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    PROVIDER_ERROR = "provider_error"
    BAD_RESPONSE = "bad_response"
    NOT_ALLOWED = "not_allowed"

    def __init__(self, kind: str, message: str):
        super().__init__(message, details={"kind": kind})
        self.kind = kind


class Geocoder(Protocol):
    """What every provider offers: turn an address into coordinates."""

    name: str

    def geocode(self, address: str) -> Coordinates:
        """Coordinates of the address; raises GeocodingError."""


class _HttpGeocoder:
    """Shared HTTP handling: one GET with a timeout, transport failures turned into GeocodingError."""

    name = "provider"
    base_url_setting = ""

    def __init__(self, api_key: str, base_url: str, *, timeout: float = 10, policy: outbound.Policy | None = None):
        if not api_key:
            raise GeocodingError(GeocodingError.INVALID_KEY, _("No %(provider)s API key is saved.", provider=self.name))
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.policy = outbound.current_policy() if policy is None else policy

    def _get(self, path: str, params: dict) -> requests.Response:
        """GET base_url + path through the SSRF guard; raises GeocodingError on timeout, when the host cannot be
        reached, or when the guard refuses its address (the one refusal message, whatever the reason)."""
        http = outbound.guarded_session(self.policy)
        try:
            return http.get(self.base_url + path, params=params, timeout=self.timeout,
                            headers={"Accept": "application/json"})
        except outbound.BlockedAddress:
            raise GeocodingError(GeocodingError.NOT_ALLOWED, outbound.refusal_message(self.base_url)) from None
        except requests.Timeout:
            raise GeocodingError(GeocodingError.TIMEOUT,
                                 _("%(provider)s did not answer within %(seconds)s seconds. Try again; if it keeps "
                                   "happening, check the network.", provider=self.name,
                                   seconds=format(self.timeout, "g"))) from None
        except requests.RequestException as exc:
            # str(exc) would include the URL, and so the API key; the class name is enough to act on.
            raise GeocodingError(GeocodingError.UNREACHABLE,
                                 _("%(provider)s could not be reached at %(url)s (%(error)s). Check the network or "
                                   "%(setting)s.", provider=self.name, url=self.base_url,
                                   error=exc.__class__.__name__, setting=self.base_url_setting)) from None
        finally:
            http.close()

    def _json(self, response: requests.Response) -> dict:
        """The response body as a JSON object; raises GeocodingError when it is something else."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GeocodingError(GeocodingError.BAD_RESPONSE,
                                 _("%(provider)s answered (HTTP %(status)s) with something that is not geocoding "
                                   "JSON. Check %(setting)s.", provider=self.name, status=response.status_code,
                                   setting=self.base_url_setting))
        return body


class GoogleGeocoder(_HttpGeocoder):
    """Google's Geocoding API: GET /maps/api/geocode/json?address=&key= -> {"status", "results"}."""

    name = "Google Maps"
    base_url_setting = "GEOCODING_GOOGLE_BASE_URL"

    def geocode(self, address: str) -> Coordinates:
        """Coordinates of the first result; raises GeocodingError for a refused key, quota, no result, ..."""
        response = self._get("/maps/api/geocode/json", {"address": address, "key": self.api_key})
        if response.status_code >= 500:
            raise GeocodingError(GeocodingError.PROVIDER_ERROR,
                                 _("%(provider)s had a server error (HTTP %(status)s). Try again later.",
                                   provider=self.name, status=response.status_code))
        body = self._json(response)
        status = body.get("status")
        if response.status_code != 200 or not isinstance(status, str):
            raise GeocodingError(GeocodingError.BAD_RESPONSE,
                                 _("%(provider)s answered (HTTP %(status)s) without a geocoding status. "
                                   "Check %(setting)s.", provider=self.name, status=response.status_code,
                                   setting=self.base_url_setting))
        detail = body.get("error_message") or ""
        suffix = f" ({detail})" if detail else ""
        if status == "OK":
            try:
                first = body["results"][0]
                location = first["geometry"]["location"]
                return Coordinates(float(location["lat"]), float(location["lng"]), first.get("formatted_address", ""))
            except (KeyError, IndexError, TypeError, ValueError):
                raise GeocodingError(GeocodingError.BAD_RESPONSE,
                                     _("%(provider)s said OK but sent no coordinates.", provider=self.name)) from None
        if status == "ZERO_RESULTS":
            raise GeocodingError(GeocodingError.NOT_FOUND,
                                 _("The key works, but %(provider)s found no place for “%(address)s”.",
                                   provider=self.name, address=address))
        if status == "REQUEST_DENIED":
            raise GeocodingError(GeocodingError.INVALID_KEY,
                                 _("%(provider)s refused the API key%(detail)s. Check the key and that the "
                                   "Geocoding API is enabled for it.", provider=self.name, detail=suffix))
        if status == "OVER_QUERY_LIMIT":
            raise GeocodingError(GeocodingError.QUOTA,
                                 _("%(provider)s says the key is over its quota%(detail)s. Wait, or raise the quota.",
                                   provider=self.name, detail=suffix))
        if status == "OVER_DAILY_LIMIT":
            raise GeocodingError(GeocodingError.QUOTA,
                                 _("%(provider)s refused the request: the daily limit is reached, billing is not "
                                   "enabled, or the key is invalid%(detail)s.", provider=self.name, detail=suffix))
        if status == "INVALID_REQUEST":
            raise GeocodingError(GeocodingError.BAD_REQUEST,
                                 _("%(provider)s did not accept the request%(detail)s.", provider=self.name,
                                   detail=suffix))
        raise GeocodingError(GeocodingError.PROVIDER_ERROR,
                             _("%(provider)s could not geocode the address (status %(status)s)%(detail)s. "
                               "Try again later.", provider=self.name, status=status, detail=suffix))


class YandexGeocoder(_HttpGeocoder):
    """Yandex's Geocoder API: GET /1.x/?apikey=&geocode=&format=json -> GeoObjectCollection with "lon lat"."""

    name = "Yandex Maps"
    base_url_setting = "GEOCODING_YANDEX_BASE_URL"

    def geocode(self, address: str) -> Coordinates:
        """Coordinates of the first feature; raises GeocodingError for a refused key (403), quota (429), ..."""
        response = self._get("/1.x/", {"apikey": self.api_key, "geocode": address, "format": "json",
                                       "lang": "en_US", "results": 1})
        if response.status_code != 200:
            try:
                detail = response.json().get("message") or ""
            except (ValueError, AttributeError):
                detail = ""
            suffix = f" ({detail})" if detail else ""
            if response.status_code in (401, 403):
                raise GeocodingError(GeocodingError.INVALID_KEY,
                                     _("%(provider)s refused the API key%(detail)s. Check the key and that it is "
                                       "enabled for the Geocoder API (new keys take up to 15 minutes).",
                                       provider=self.name, detail=suffix))
            if response.status_code == 429:
                raise GeocodingError(GeocodingError.QUOTA,
                                     _("%(provider)s says the key is over its quota%(detail)s. Wait, or raise the "
                                       "quota.", provider=self.name, detail=suffix))
            if response.status_code == 400:
                raise GeocodingError(GeocodingError.BAD_REQUEST,
                                     _("%(provider)s did not accept the request%(detail)s.", provider=self.name,
                                       detail=suffix))
            raise GeocodingError(GeocodingError.PROVIDER_ERROR,
                                 _("%(provider)s answered with HTTP %(status)s%(detail)s. Try again later.",
                                   provider=self.name, status=response.status_code, detail=suffix))
        body = self._json(response)
        try:
            members = body["response"]["GeoObjectCollection"]["featureMember"]
        except (KeyError, TypeError):
            raise GeocodingError(GeocodingError.BAD_RESPONSE,
                                 _("%(provider)s answered without a GeoObjectCollection.", provider=self.name)) from None
        if not members:
            raise GeocodingError(GeocodingError.NOT_FOUND,
                                 _("The key works, but %(provider)s found no place for “%(address)s”.",
                                   provider=self.name, address=address))
        try:
            geo = members[0]["GeoObject"]
            lon, lat = (float(part) for part in geo["Point"]["pos"].split())
            label = geo.get("metaDataProperty", {}).get("GeocoderMetaData", {}).get("text", "") or geo.get("name", "")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise GeocodingError(GeocodingError.BAD_RESPONSE,
                                 _("%(provider)s sent a place without coordinates.", provider=self.name)) from None
        return Coordinates(lat, lon, label)


PROVIDERS: dict[str, type[GoogleGeocoder | YandexGeocoder]] = {"google": GoogleGeocoder, "yandex": YandexGeocoder}
BASE_URL_SETTINGS = {"google": "GEOCODING_GOOGLE_BASE_URL", "yandex": "GEOCODING_YANDEX_BASE_URL"}


def geocoder_for(provider: str, api_key: str, config) -> Geocoder:
    """The geocoder of a provider ("google" or "yandex"), configured from the app's GEOCODING_* settings."""
    if provider not in PROVIDERS:
        raise GeocodingError(GeocodingError.BAD_REQUEST,
                             _("Unknown geocoding provider %(provider)s.", provider=repr(provider)))
    return PROVIDERS[provider](api_key, config[BASE_URL_SETTINGS[provider]],
                               timeout=float(config["GEOCODING_TIMEOUT_SECONDS"]),
                               policy=outbound.policy_from_config(config))
