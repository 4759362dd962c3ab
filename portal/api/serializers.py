"""How packages, transitions and settings look in the API's JSON."""
from __future__ import annotations

from datetime import datetime, timezone

from portal.packages.commands import package_payload
from portal.packages.models import Package, Transition
from portal.packages.states import state_info
from portal.settings import service as settings
from portal.settings.models import ApplicationSetting


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z suffix: 2026-11-22T11:05:00.123456Z."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def status_json(code: int | None) -> dict | None:
    """A state as {code, value, label}; None stays None."""
    if code is None:
        return None
    info = state_info(code)
    return {"code": info.code, "value": info.slug, "label": info.label}


def package_json(package: Package) -> dict:
    """A package as the list shows it; the same fields the events carry, plus counts, times and version."""
    data = package_payload(package)
    data.update(item_count=package.item_count, created_at=iso_utc(package.created_at),
                updated_at=iso_utc(package.updated_at), version=package.version)
    return data


def transition_summary_json(transition: Transition) -> dict:
    """A command a package offers: enough to run it."""
    return {"id": transition.id, "slug": transition.slug, "name": transition.name,
            "command_code": transition.command_code,
            "destination_state": status_json(transition.destination_state)}


def package_detail_json(package: Package, transitions: list[Transition]) -> dict:
    """A package with its items and the commands that start from its state."""
    data = package_json(package)
    data["items"] = [{"order_item": item.order_item, "sku": item.sku, "name": item.name,
                      "barcode": item.barcode, "quantity": item.quantity} for item in package.items]
    data["transitions"] = [transition_summary_json(t) for t in transitions]
    return data


def transition_json(transition: Transition) -> dict:
    """A transition (command) row as admins define it."""
    return {"id": transition.id, "slug": transition.slug, "name": transition.name,
            "command_code": transition.command_code, "source_state": status_json(transition.source_state),
            "destination_state": status_json(transition.destination_state),
            "visibility": list(transition.visibility or []), "configuration": transition.configuration or {},
            "is_active": transition.is_active}


def setting_json(setting: ApplicationSetting) -> dict:
    """An application setting as {id, key, json_value}, with secrets masked."""
    return {"id": setting.id, "key": setting.key, "json_value": settings.public_value(setting.key, setting.json_value)}
