"""Application settings (admins only): secrets are shown masked, and the mask written back keeps them."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.schemas import Answer, Body, RowId
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting as SettingRow

# Fields the settings service names inside a value, reported by their place in the body.
RENAMES = {name: f"json_value.{name}" for name in ("statuses", "channels", "start_date", "page_size",
                                                   "exclude_test_orders", "provider", "api_key")}
RENAMES.update({"username": "json_value.auth.username", "password": "json_value.auth.password",
                "events": "json_value"})


class ApplicationSetting(Answer):
    """A setting as {id, key, json_value}, with secrets masked."""

    id: int
    key: str
    json_value: Any = Field(description="Any JSON value; secrets show as ******** plus their last two "
                                        "characters, and sending that back keeps the stored secret.")

    @classmethod
    def of(cls, setting: SettingRow) -> ApplicationSetting:
        """A setting row as the API shows it."""
        return cls(id=setting.id, key=setting.key, json_value=settings.public_value(setting.key, setting.json_value))


class SettingPatch(Body):
    """A new value for a setting named by id or key (a new key is created)."""

    id: RowId | None = Field(None, description="Names the setting (or give key).")
    key: str | None = Field(None, max_length=200, examples=["IS_OTP_ENABLED"])
    json_value: Any = Field(description="The new value.")


def _setting_or_404(setting_id: int) -> SettingRow:
    """The setting with this id; raises NotFound."""
    setting = db.session.get(SettingRow, setting_id)
    if setting is None:
        raise NotFound(_("No application setting with id %(id)s.", id=setting_id))
    return setting


def _save(setting_id: int | None, body: SettingPatch) -> ApplicationSetting:
    """Store the value through the settings service."""
    if setting_id is not None and body.id is not None and body.id != setting_id:
        raise ValidationFailed(_("id does not match the setting in the URL."), field="id")
    setting = settings.set_value(db.session, body.key or "", body.json_value, user_id=caller().user_id,
                                 setting_id=setting_id if setting_id is not None else body.id)
    return ApplicationSetting.of(setting)


@operation("GET", "/oms/settings/application_settings/", summary="Application settings (admins only).",
           answer=list[ApplicationSetting], tag="settings")
def list_settings():
    """Every stored application setting."""
    return [ApplicationSetting.of(s) for s in settings.list_settings(db.session)]


@operation("PATCH", "/oms/settings/application_settings/", body=SettingPatch, answer=ApplicationSetting,
           errors=("404",), renames=RENAMES, tag="settings", example={"key": "IS_OTP_ENABLED", "json_value": False},
           summary="Change a setting named by id or key; a new key is created (admins only).")
def update_setting(body: SettingPatch):
    """Change a setting named by id or key."""
    return _save(None, body)


@operation("GET", "/oms/settings/application_settings/<int:setting_id>/", answer=ApplicationSetting,
           errors=("404",), tag="settings", summary="One application setting (admins only).")
def show_setting(setting_id: int):
    """One application setting."""
    return ApplicationSetting.of(_setting_or_404(setting_id))


@operation("PATCH", "/oms/settings/application_settings/<int:setting_id>/", body=SettingPatch,
           answer=ApplicationSetting, errors=("404",), renames=RENAMES, tag="settings",
           summary="Change this setting (admins only).")
def update_setting_by_id(setting_id: int, body: SettingPatch):
    """Change the setting with this id."""
    return _save(setting_id, body)
