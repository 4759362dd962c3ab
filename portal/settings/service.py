"""Reading and changing application settings, with validation, encrypted secrets and an audit row per change.

Secret fields (OMNITRON_CLIENT_SETTINGS auth.password, GEOLOCATION_DISCOVERY api_key) are stored
as {"$encrypted": "<Fernet token>"} and are never shown back in full: public_value() masks them.
Saving a setting without a secret, or with the value the portal showed for it (its mask, with or
without the last two characters), keeps the secret already stored.
"""
from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from datetime import date

from cryptography.fernet import InvalidToken
from flask_babel import gettext as _
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session

from portal import crypto
from portal.db_types import utcnow
from portal.errors import NotFound, ValidationFailed
from portal.i18n import N_
from portal.settings.models import ApplicationSetting, SettingChange

IS_OTP_ENABLED = "IS_OTP_ENABLED"
OMNITRON_CLIENT_SETTINGS = "OMNITRON_CLIENT_SETTINGS"
ORDER_FILTERING = "ORDER_FILTERING"
GEOLOCATION_DISCOVERY = "GEOLOCATION_DISCOVERY"
WANTED_EVENTS = "WANTED_EVENTS"

# Who texts the pickup code: the portal itself, or the brand's Extension application (the code then
# travels in the package.ready_for_customer_pickup webhook and the portal sends no SMS).
PICKUP_CODE_DELIVERY = "PICKUP_CODE_DELIVERY"
PORTAL_SMS = "portal_sms"
EXTENSION_APP = "extension_app"
PICKUP_CODE_DELIVERY_MODES = {PORTAL_SMS: N_("The portal sends the SMS"),
                              EXTENSION_APP: N_("An Extension application sends it")}

DEFAULTS: dict[str, object] = {IS_OTP_ENABLED: True, PICKUP_CODE_DELIVERY: PORTAL_SMS}
ENCRYPTED = "$encrypted"
MASK = "********"

# Omnitron order statuses an admin may choose to fetch (ORDER_FILTERING.statuses).
ORDER_STATUSES = {
    "waiting": N_("Waiting"), "payment_waiting": N_("Payment waiting"), "confirmation_waiting": N_("Confirmation waiting"),
    "approved": N_("Approved"), "preparing": N_("Preparing"), "shipped": N_("Shipped"), "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"), "refunded": N_("Refunded"),
}
GEOLOCATION_PROVIDERS = {"google": "Google Maps", "yandex": "Yandex Maps"}

# key -> paths of the secret fields inside its JSON value
SECRET_FIELDS: dict[str, list[tuple[str, ...]]] = {
    OMNITRON_CLIENT_SETTINGS: [("auth", "password")],
    GEOLOCATION_DISCOVERY: [("api_key",)],
}


def _validate_bool(key: str, value: object) -> object:
    """Accept only JSON true or false."""
    if not isinstance(value, bool):
        raise ValidationFailed(_("%(key)s must be true or false.", key=key), field="json_value")
    return value


def _text(value: object, label: str, *, required: bool = True, limit: int = 255) -> str:
    """A trimmed string field; raises ValidationFailed when missing or too long."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(_("%(label)s must be text.", label=label), field=label)
    value = value.strip()
    if required and not value:
        raise ValidationFailed(_("%(label)s is required.", label=label), field=label)
    if len(value) > limit:
        raise ValidationFailed(_("%(label)s is too long (at most %(limit)s characters).", label=label, limit=limit), field=label)
    return value


def _validate_omnitron(key: str, value: object) -> object:
    """{"auth": {"username", "password"}}; the password may be left out to keep the stored one."""
    if not isinstance(value, dict) or not isinstance(value.get("auth"), dict):
        raise ValidationFailed(_('OMNITRON_CLIENT_SETTINGS must look like {"auth": {"username", "password"}}.'),
                               field="json_value")
    auth = value["auth"]
    result: dict[str, dict[str, object]] = {"auth": {"username": _text(auth.get("username"), "username", limit=150)}}
    password = auth.get("password")
    if password not in (None, "", MASK):
        result["auth"]["password"] = password if isinstance(password, dict) else _text(password, "password")
    return result


def _validate_order_filtering(key: str, value: object) -> object:
    """Which orders the OMS fetches: statuses, channels, a start date and whether to skip test orders."""
    if not isinstance(value, dict):
        raise ValidationFailed(_("ORDER_FILTERING must be an object."), field="json_value")
    unknown = set(value) - {"statuses", "channels", "start_date", "exclude_test_orders", "page_size"}
    if unknown:
        raise ValidationFailed(_("Unknown ORDER_FILTERING field: %(field)s.", field=sorted(unknown)[0]), field="json_value")
    statuses = value.get("statuses") or []
    if not isinstance(statuses, list) or not statuses:
        raise ValidationFailed(_("Choose at least one order status to fetch."), field="statuses")
    bad = [s for s in statuses if s not in ORDER_STATUSES]
    if bad:
        raise ValidationFailed(_("Unknown order status %(status)s.", status=repr(bad[0])), field="statuses")
    channels = value.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in channels):
        raise ValidationFailed(_("channels must be a list of channel ids."), field="channels")
    start = value.get("start_date")
    if start not in (None, ""):
        try:
            parsed = date.fromisoformat(str(start))
        except ValueError:
            raise ValidationFailed(_("start_date must be a date like 2026-01-31."), field="start_date") from None
        if parsed > date.today():
            raise ValidationFailed(_("start_date cannot be in the future."), field="start_date")
        start = parsed.isoformat()
    page_size = value.get("page_size", 100)
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= 1000:
        raise ValidationFailed(_("page_size must be a number from 1 to 1000."), field="page_size")
    exclude = value.get("exclude_test_orders", True)
    if not isinstance(exclude, bool):
        raise ValidationFailed(_("exclude_test_orders must be true or false."), field="exclude_test_orders")
    return {"statuses": sorted(set(statuses), key=list(ORDER_STATUSES).index), "channels": sorted(set(channels)),
            "start_date": start or None, "exclude_test_orders": exclude, "page_size": page_size}


def _validate_geolocation(key: str, value: object) -> object:
    """{"provider": "google"|"yandex", "api_key"}; the key may be left out to keep the stored one."""
    if not isinstance(value, dict):
        raise ValidationFailed(_("GEOLOCATION_DISCOVERY must be an object."), field="json_value")
    provider = value.get("provider")
    if provider not in GEOLOCATION_PROVIDERS:
        raise ValidationFailed(_("provider must be google or yandex."), field="provider")
    result = {"provider": provider}
    api_key = value.get("api_key")
    if api_key not in (None, "", MASK):
        result["api_key"] = api_key if isinstance(api_key, dict) else _text(api_key, "api_key", limit=500)
    return result


def _validate_pickup_code_delivery(key: str, value: object) -> object:
    """Either "portal_sms" or "extension_app"."""
    if value not in PICKUP_CODE_DELIVERY_MODES:
        raise ValidationFailed(_("%(key)s must be portal_sms or extension_app.", key=key), field="json_value")
    return value


# key -> checks of a validated value that need the database (e.g. ORDER_FILTERING's channels exist).
CHECKS: dict[str, list[Callable[[Session, object], None]]] = {}
# key -> function that checks a new value and returns it as it will be stored (WANTED_EVENTS is
# registered by the webhooks package, which owns the event catalogue: see portal/wiring.py).
VALIDATORS: dict[str, Callable[[str, object], object]] = {
    IS_OTP_ENABLED: _validate_bool,
    OMNITRON_CLIENT_SETTINGS: _validate_omnitron,
    ORDER_FILTERING: _validate_order_filtering,
    GEOLOCATION_DISCOVERY: _validate_geolocation,
    PICKUP_CODE_DELIVERY: _validate_pickup_code_delivery,
}


def _get_path(value: object, path: tuple[str, ...]) -> object:
    """The item at a path of keys, or None."""
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set_path(value: dict, path: tuple[str, ...], item: object) -> None:
    """Set the item at a path of keys, creating objects on the way."""
    for part in path[:-1]:
        value = value.setdefault(part, {})
    value[path[-1]] = item


def _stored_secret(sealed: object) -> str | None:
    """The clear text of a sealed secret, or None when there is none (or it no longer decrypts)."""
    if isinstance(sealed, dict) and ENCRYPTED in sealed:
        try:
            return crypto.decrypt(sealed[ENCRYPTED])
        except (ValueError, InvalidToken):
            return None
    return None


def _shown_as(sealed: object) -> set[str]:
    """Every text the portal may have shown for a stored secret: the bare mask and the mask with its tail."""
    if not (isinstance(sealed, dict) and ENCRYPTED in sealed):
        return set()
    secret = _stored_secret(sealed)
    return {MASK} if secret is None else {MASK, mask(secret)}


def _seal_secrets(key: str, new: object, old: object) -> object:
    """Encrypt new secrets; keep the stored secret where none was given or where the value equals what was shown.

    The API and the settings pages show a secret as its mask (public_value); a client that reads a
    setting and writes it back unchanged sends that mask, which must keep the stored secret, never
    replace it with the mask text.
    """
    if not isinstance(new, dict):
        return new
    new = deepcopy(new)
    for path in SECRET_FIELDS.get(key, []):
        given = _get_path(new, path)
        kept = _get_path(old, path)
        if isinstance(given, str) and given not in _shown_as(kept) and given not in ("", MASK):
            _set_path(new, path, {ENCRYPTED: crypto.encrypt(given)})
        elif isinstance(given, dict) and ENCRYPTED in given:
            pass  # already sealed (e.g. re-saved by rotation)
        elif isinstance(kept, dict) and ENCRYPTED in kept:
            _set_path(new, path, kept)
        else:
            _drop_path(new, path)  # nothing stored to keep: the set_value check asks for the secret
    return new


def _drop_path(value: dict, path: tuple[str, ...]) -> None:
    """Remove the item at a path of keys, when there is one."""
    parent = _get_path(value, path[:-1]) if len(path) > 1 else value
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def mask(secret: str) -> str:
    """A secret shown as its mask plus, for long ones, its last two characters."""
    return MASK + (secret[-2:] if len(secret) >= 10 else "")


def public_value(key: str, value: object) -> object:
    """The value as it may be shown or returned by the API: secrets masked."""
    if not isinstance(value, dict) or key not in SECRET_FIELDS:
        return value
    shown = deepcopy(value)
    for path in SECRET_FIELDS[key]:
        sealed = _get_path(shown, path)
        if isinstance(sealed, dict) and ENCRYPTED in sealed:
            secret = _stored_secret(sealed)
            _set_path(shown, path, MASK if secret is None else mask(secret))
    return shown


def get_secret(session: Session, key: str, path: tuple[str, ...]) -> str | None:
    """The decrypted secret at a path of a setting, or None when not set."""
    sealed = _get_path(get_value(session, key), path)
    if isinstance(sealed, dict) and ENCRYPTED in sealed:
        return crypto.decrypt(sealed[ENCRYPTED])
    return None


# Values read in the session's current transaction, by key: a command asks IS_OTP_ENABLED up to three times
# (the form, the check, the panel) and would send three SELECTs. Forgotten when the transaction ends and when
# this session flushes a setting, so a transaction sees its own saves and the next one sees everyone's.
_READ = "portal.settings.read"


def get_value(session: Session, key: str) -> object:
    """The stored value of a setting, or its default (read once per transaction; callers get their own copy)."""
    read = session.info.setdefault(_READ, {})
    if key not in read:
        read[key] = session.scalar(select(ApplicationSetting.json_value).where(ApplicationSetting.key == key))
    value = read[key]
    if value is None:
        value = DEFAULTS.get(key)
    return deepcopy(value) if isinstance(value, dict | list) else value


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _forget_read_values(session: Session, *_args: object) -> None:
    session.info.pop(_READ, None)


@event.listens_for(Session, "do_orm_execute")
def _forget_read_values_on_bulk_change(state: ORMExecuteState) -> None:
    if ((state.is_update or state.is_delete or state.is_insert) and _READ in state.session.info
            and state.bind_mapper is not None and state.bind_mapper.class_ is ApplicationSetting):
        state.session.info.pop(_READ, None)


@event.listens_for(Session, "before_flush")
def _forget_read_values_on_save(session: Session, flush_context: object, instances: object) -> None:
    if _READ in session.info and any(isinstance(obj, ApplicationSetting)
                                     for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(_READ, None)


def is_otp_enabled(session: Session) -> bool:
    """True when handing over a click & collect package needs the customer's code."""
    return bool(get_value(session, IS_OTP_ENABLED))


def pickup_code_delivery(session: Session) -> str:
    """PICKUP_CODE_DELIVERY: "portal_sms" (default) or "extension_app"."""
    value = get_value(session, PICKUP_CODE_DELIVERY)
    return value if value in PICKUP_CODE_DELIVERY_MODES else PORTAL_SMS


def list_settings(session: Session) -> list[ApplicationSetting]:
    """Every stored setting, by key."""
    return list(session.scalars(select(ApplicationSetting).order_by(ApplicationSetting.key)))


def audit(session: Session, key: str, *, user_id: int | None, area: str = "setting", action: str = "update") -> None:
    """Record who changed what and when (never the value). Not committed."""
    session.add(SettingChange(area=area, key=key, action=action, user_id=user_id))


def register_validator(key: str, validator: Callable[[str, object], object]) -> None:
    """Let the package that owns a key's vocabulary check its values (called at start-up by portal/wiring.py)."""
    VALIDATORS[key] = validator


def register_check(key: str, check: Callable[[Session, object], None]) -> None:
    """Add a check that needs the database, run on a key's validated value before it is stored (portal/wiring.py)."""
    CHECKS.setdefault(key, [])
    if check not in CHECKS[key]:
        CHECKS[key].append(check)


AfterSave = Callable[..., None]
# What other domains do when a setting is saved, by key: fn(session, before, after, *, user_id), where before
# and after are the stored values (secrets sealed), run before the save's commit. See after_save().
_AFTER_SAVE: dict[str, list[AfterSave]] = {}


def after_save(key: str) -> Callable[[AfterSave], AfterSave]:
    """Register a function to run whenever the setting `key` is saved (by a form, the API or a script).

    The setup wizard uses it to settle the steps that depend on a setting, so every way of saving it
    settles them the same way. The function must not commit; set_value commits after it.
    """
    def register(hook: AfterSave) -> AfterSave:
        """Add the hook once."""
        hooks = _AFTER_SAVE.setdefault(key, [])
        if hook not in hooks:
            hooks.append(hook)
        return hook
    return register


def set_value(session: Session, key: str, value: object, *, user_id: int | None, setting_id: int | None = None):
    """Validate and store a setting, creating it when new; records who changed which key.

    Only known keys are accepted, each checked by its validator (VALIDATORS; other packages register theirs
    at start-up). Raises ValidationFailed for an unknown key, a bad value or an id/key mismatch, NotFound for an
    unknown id.
    """
    if setting_id is not None:
        setting = session.get(ApplicationSetting, setting_id)
        if setting is None:
            raise NotFound(_("No application setting with id %(id)s.", id=setting_id))
        if key and key != setting.key:
            raise ValidationFailed(_("id and key name different settings."), field="key")
        key = setting.key
    else:
        if not key or not isinstance(key, str):
            raise ValidationFailed(_("key is required."), field="key")
        setting = session.scalar(select(ApplicationSetting).where(ApplicationSetting.key == key))
    validator = VALIDATORS.get(key)
    if validator is None:
        raise ValidationFailed(_("%(key)s is not a setting the portal knows. Known settings: %(known)s.", key=key,
                                 known=", ".join(sorted(VALIDATORS))), field="key")
    value = validator(key, value)
    for check in CHECKS.get(key, []):
        check(session, value)
    value = _seal_secrets(key, value, setting.json_value if setting is not None else None)
    for path in SECRET_FIELDS.get(key, []):
        if _get_path(value, path) is None:
            raise ValidationFailed(_("%(field)s is required.", field=path[-1]), field=path[-1])
    before = setting.json_value if setting is not None else None
    if setting is None:
        setting = ApplicationSetting(key=key)
        session.add(setting)
    setting.json_value = value
    setting.updated_at = utcnow()
    setting.updated_by_id = user_id
    audit(session, key, user_id=user_id)
    session.flush()
    for hook in _AFTER_SAVE.get(key, ()):
        hook(session, before, value, user_id=user_id)
    session.commit()
    return setting


def rotate_secrets(session: Session) -> int:
    """Re-encrypt every secret stored in settings with the newest key; returns how many were rotated.

    Raises ValueError naming the setting when a secret cannot be read with any configured key.
    """
    fernet = crypto.fernet()
    count = 0
    for setting in list_settings(session):
        value = deepcopy(setting.json_value)
        changed = False
        for path in SECRET_FIELDS.get(setting.key, []):
            sealed = _get_path(value, path)
            if isinstance(sealed, dict) and ENCRYPTED in sealed:
                try:
                    sealed[ENCRYPTED] = fernet.rotate(sealed[ENCRYPTED].encode()).decode()
                except InvalidToken:
                    raise ValueError(f"the secret in {setting.key} cannot be decrypted with the configured "
                                     "ENCRYPTION_KEYS; keep the old key in the list until rotation has run") from None
                changed = True
                count += 1
        if changed:
            setting.json_value = value
    return count
