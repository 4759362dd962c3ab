"""The geocoding clients against a local HTTP stub of Google's and Yandex's endpoints: answers and errors."""
from __future__ import annotations

import socket
import time

import pytest
from stubs.geocoding_server import (
    GOOD_GOOGLE_KEY,
    GOOD_YANDEX_KEY,
    NOWHERE,
    PLACE,
    QUOTA_KEY,
    geocoding_stub,  # noqa: F401 (fixture)
)

from portal.geolocation.client import SAMPLE_ADDRESS, GeocodingError, GoogleGeocoder, YandexGeocoder, geocoder_for


def _config(stub, timeout: float = 2.0) -> dict:
    """GEOCODING_* settings pointing both providers at the stub."""
    return {"GEOCODING_GOOGLE_BASE_URL": stub.url, "GEOCODING_YANDEX_BASE_URL": stub.url + "/",
            "GEOCODING_TIMEOUT_SECONDS": timeout}


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_google_geocodes_the_sample_address_and_sends_the_key(geocoding_stub):
    """A good Google key returns the coordinates of the first result, with the provider's label."""
    found = geocoder_for("google", GOOD_GOOGLE_KEY, _config(geocoding_stub)).geocode(SAMPLE_ADDRESS)

    assert (found.lat, found.lng) == PLACE
    assert "Kadıköy" in found.label
    seen = geocoding_stub.requests[-1]
    assert seen.path == "/maps/api/geocode/json"
    assert seen.params == {"address": SAMPLE_ADDRESS, "key": GOOD_GOOGLE_KEY}


def test_yandex_geocodes_and_reads_pos_as_longitude_then_latitude(geocoding_stub):
    """Yandex sends "lon lat"; the client returns latitude and longitude the right way round."""
    found = geocoder_for("yandex", GOOD_YANDEX_KEY, _config(geocoding_stub)).geocode(SAMPLE_ADDRESS)

    assert (found.lat, found.lng) == PLACE
    assert found.label == "Türkiye, İstanbul, Kadıköy, Bağdat Caddesi"
    seen = geocoding_stub.requests[-1]
    assert seen.path == "/1.x/"
    assert seen.params["apikey"] == GOOD_YANDEX_KEY
    assert seen.params["geocode"] == SAMPLE_ADDRESS
    assert seen.params["format"] == "json"


@pytest.mark.parametrize("provider", ["google", "yandex"])
def test_a_bad_key_is_reported_as_an_invalid_key(geocoding_stub, provider):
    """Google's REQUEST_DENIED and Yandex's 403 both become 'refused the API key', with the provider's reason."""
    with pytest.raises(GeocodingError) as caught:
        geocoder_for(provider, "not-a-real-key-123", _config(geocoding_stub)).geocode(SAMPLE_ADDRESS)

    assert caught.value.kind == GeocodingError.INVALID_KEY
    assert "refused the API key" in caught.value.message
    reason = "The provided API key is invalid." if provider == "google" else "Invalid api key"
    assert reason in caught.value.message
    assert "not-a-real-key-123" not in caught.value.message


@pytest.mark.parametrize("provider", ["google", "yandex"])
def test_a_key_over_its_quota_is_reported_as_quota(geocoding_stub, provider):
    """OVER_QUERY_LIMIT (Google) and 429 (Yandex) say the key is over its quota."""
    with pytest.raises(GeocodingError) as caught:
        geocoder_for(provider, QUOTA_KEY, _config(geocoding_stub)).geocode(SAMPLE_ADDRESS)

    assert caught.value.kind == GeocodingError.QUOTA
    assert "over its quota" in caught.value.message


@pytest.mark.parametrize("provider", ["google", "yandex"])
def test_a_slow_provider_times_out_quickly_with_a_clear_message(geocoding_stub, provider):
    """When the provider is slower than the timeout the client gives up in time and says so."""
    geocoding_stub.delay = 3
    key = GOOD_GOOGLE_KEY if provider == "google" else GOOD_YANDEX_KEY
    started = time.monotonic()

    with pytest.raises(GeocodingError) as caught:
        geocoder_for(provider, key, _config(geocoding_stub, timeout=0.3)).geocode(SAMPLE_ADDRESS)

    assert time.monotonic() - started < 2
    assert caught.value.kind == GeocodingError.TIMEOUT
    assert "did not answer within 0.3 seconds" in caught.value.message


@pytest.mark.parametrize("geocoder", [GoogleGeocoder, YandexGeocoder])
def test_an_unreachable_host_is_reported_without_leaking_the_key(geocoder):
    """Connection refused becomes 'could not be reached'; the message never quotes the URL with the key."""
    base = f"http://127.0.0.1:{_closed_port()}"

    with pytest.raises(GeocodingError) as caught:
        geocoder("secret-key-in-url-42", base, timeout=1).geocode(SAMPLE_ADDRESS)

    assert caught.value.kind == GeocodingError.UNREACHABLE
    assert f"could not be reached at {base}" in caught.value.message
    assert "secret-key-in-url-42" not in caught.value.message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize("provider", ["google", "yandex"])
def test_an_address_with_no_result_says_the_key_works(geocoding_stub, provider):
    """ZERO_RESULTS / an empty featureMember: the key was accepted but there is no place."""
    key = GOOD_GOOGLE_KEY if provider == "google" else GOOD_YANDEX_KEY

    with pytest.raises(GeocodingError) as caught:
        geocoder_for(provider, key, _config(geocoding_stub)).geocode(NOWHERE)

    assert caught.value.kind == GeocodingError.NOT_FOUND
    assert "The key works" in caught.value.message


def test_a_base_url_that_is_not_a_geocoder_is_a_bad_response(geocoding_stub):
    """A base URL pointing at something else (here: the stub's 404 for an unknown path) is explained."""
    with pytest.raises(GeocodingError) as caught:
        GoogleGeocoder(GOOD_GOOGLE_KEY, geocoding_stub.url + "/elsewhere").geocode(SAMPLE_ADDRESS)

    assert caught.value.kind == GeocodingError.BAD_RESPONSE
    assert "GEOCODING_GOOGLE_BASE_URL" in caught.value.message


def test_an_unknown_provider_or_missing_key_is_refused_before_any_request(geocoding_stub):
    """Only google and yandex exist, and a key is needed."""
    with pytest.raises(GeocodingError, match="Unknown geocoding provider"):
        geocoder_for("bing", GOOD_GOOGLE_KEY, _config(geocoding_stub))
    with pytest.raises(GeocodingError, match="No Google Maps API key"):
        geocoder_for("google", "", _config(geocoding_stub))
    assert geocoding_stub.requests == []
