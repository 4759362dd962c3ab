"""Reading and changing application settings, with validation and an audit row per change."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db_types import utcnow
from portal.errors import NotFound, ValidationFailed
from portal.settings.models import ApplicationSetting, SettingChange

IS_OTP_ENABLED = "IS_OTP_ENABLED"

DEFAULTS: dict[str, object] = {IS_OTP_ENABLED: True}


def _validate_bool(key: str, value: object) -> object:
    """Accept only JSON true or false."""
    if not isinstance(value, bool):
        raise ValidationFailed(f"{key} must be true or false.", field="json_value")
    return value


# key -> function that checks a new value and returns it as it will be stored.
VALIDATORS: dict[str, Callable[[str, object], object]] = {IS_OTP_ENABLED: _validate_bool}


def get_value(session: Session, key: str) -> object:
    """The stored value of a setting, or its default."""
    value = session.scalar(select(ApplicationSetting.json_value).where(ApplicationSetting.key == key))
    if value is None:
        return DEFAULTS.get(key)
    return value


def is_otp_enabled(session: Session) -> bool:
    """True when handing over a click & collect package needs the customer's code."""
    return bool(get_value(session, IS_OTP_ENABLED))


def list_settings(session: Session) -> list[ApplicationSetting]:
    """Every stored setting, by key."""
    return list(session.scalars(select(ApplicationSetting).order_by(ApplicationSetting.key)))


def set_value(session: Session, key: str, value: object, *, user_id: int | None, setting_id: int | None = None):
    """Validate and store a setting, creating it when new; records who changed which key.

    Raises ValidationFailed for a bad value or an id/key mismatch, NotFound for an unknown id.
    """
    if setting_id is not None:
        setting = session.get(ApplicationSetting, setting_id)
        if setting is None:
            raise NotFound(f"No application setting with id {setting_id}.")
        if key and key != setting.key:
            raise ValidationFailed("id and key name different settings.", field="key")
        key = setting.key
    else:
        if not key:
            raise ValidationFailed("key is required.", field="key")
        setting = session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == key))
    validator = VALIDATORS.get(key)
    if validator is not None:
        value = validator(key, value)
    if setting is None:
        setting = ApplicationSetting(key=key)
        session.add(setting)
    setting.json_value = value
    setting.updated_at = utcnow()
    setting.updated_by_id = user_id
    session.add(SettingChange(key=key, user_id=user_id))
    session.commit()
    return setting
