"""Testing the saved GEOLOCATION_DISCOVERY key, and recording the result on the setup wizard's step 9."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from portal.errors import ValidationFailed
from portal.geolocation.client import SAMPLE_ADDRESS, Coordinates, Geocoder, GeocodingError, geocoder_for
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep

STEP_KEY = "geolocation"


def saved_provider(session: Session) -> str | None:
    """The provider saved in GEOLOCATION_DISCOVERY ("google" or "yandex"), or None."""
    value = settings.get_value(session, settings.GEOLOCATION_DISCOVERY)
    return value.get("provider") if isinstance(value, dict) else None


def check_saved_key(session: Session, config, *, user_id: int | None, address: str = "") -> Coordinates:
    """Geocode an address with the saved provider and (decrypted) key; marks step 9 done, or needing attention.

    Raises ValidationFailed when no key is saved or the address is too long, GeocodingError when the test fails.
    """
    address = (address or "").strip() or SAMPLE_ADDRESS
    if len(address) > 300:
        raise ValidationFailed(_("The test address is too long (at most 300 characters)."), field="address")
    provider = saved_provider(session)
    try:
        api_key = settings.get_secret(session, settings.GEOLOCATION_DISCOVERY, ("api_key",))
    except ValueError:
        raise ValidationFailed(_("The saved API key cannot be decrypted with the configured ENCRYPTION_KEYS; "
                                 "enter the key again."), field="api_key") from None
    if provider is None or not api_key:
        raise ValidationFailed(_("Save a provider and an API key first, then test them."), field="api_key")
    name = settings.GEOLOCATION_PROVIDERS[provider]
    try:
        found = geocoder_for(provider, api_key, config).geocode(address)
    except GeocodingError as exc:
        wizard.mark(session, STEP_KEY, SetupStep.NEEDS_ATTENTION, user_id=user_id,
                    note=_("The %(provider)s key test failed: %(error)s", provider=name, error=exc.message))
        raise
    wizard.mark(session, STEP_KEY, SetupStep.DONE, user_id=user_id,
                note=_("%(provider)s placed “%(address)s” at %(lat)s, %(lng)s.", provider=name, address=address,
                       lat=format(found.lat, ".6f"), lng=format(found.lng, ".6f")))
    return found


def _saved_pair(session: Session) -> tuple[str | None, str | None]:
    """(provider, decrypted key) as saved now; the key is None when missing or unreadable."""
    try:
        api_key = settings.get_secret(session, settings.GEOLOCATION_DISCOVERY, ("api_key",))
    except ValueError:
        api_key = None
    return saved_provider(session), api_key


def save_settings(session: Session, provider: str, api_key: str, *, user_id: int | None) -> bool:
    """Save GEOLOCATION_DISCOVERY (an empty key keeps the saved one); returns True when provider or key changed.

    A change means the last key test no longer holds, so step 9 goes back to in progress until tested
    (the after-save rule in portal/setup/rules.py).
    Raises ValidationFailed (nothing changed) for an unknown provider or a missing first key.
    """
    before = _saved_pair(session)
    # Saving settles step 9 (portal/setup/rules.py), whether from the wizard or the API.
    settings.set_value(session, settings.GEOLOCATION_DISCOVERY, {"provider": provider, "api_key": api_key},
                       user_id=user_id)
    return _saved_pair(session) != before


def saved_geocoder(session: Session, config) -> Geocoder:
    """A geocoder for the saved provider and (decrypted) key, for callers other than the key test.

    Raises ValidationFailed, with what to do in step 9, when no provider or key is saved or the key cannot be
    decrypted. Unlike check_saved_key it records nothing on the wizard.
    """
    try:
        api_key = settings.get_secret(session, settings.GEOLOCATION_DISCOVERY, ("api_key",))
    except ValueError:
        raise ValidationFailed(_("The saved geocoding API key cannot be decrypted with the configured "
                                 "ENCRYPTION_KEYS; enter the key again in step 9."), field="api_key") from None
    provider = saved_provider(session)
    if provider is None or not api_key:
        raise ValidationFailed(_("Geocoding is not set up; save a Google Maps or Yandex Maps key in step 9."),
                               field="api_key")
    return geocoder_for(provider, api_key, config)
