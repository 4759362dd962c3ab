"""Cargo companies (setup step 14): a real integration with credentials, or a demo client.

`conf` is stored as one Fernet token of its JSON (portal.crypto). Secret fields (passwords, keys) are
never shown back in full; saving without a secret, or with its mask, keeps the stored one as long as
the shipping company stays the same. Every create, update and delete writes an audit row
(area "cargo_company", key: the ERP code), never a credential.
"""
from __future__ import annotations

import json
import re

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import crypto
from portal.cargo.companies import DEMO_CLIENTS, SHIPPING_COMPANIES, URL, ShippingCompany, demo_client_name
from portal.cargo.models import CargoCompany
from portal.db_types import utcnow
from portal.errors import NotFound, ValidationFailed
from portal.integrations.service import clean_url
from portal.settings import service as settings
from portal.setup import service as wizard

STEP_KEY = "cargo_companies"
AUDIT_AREA = "cargo_company"
ERP_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MAX_VALUE_LENGTH = 500


def list_companies(session: Session) -> list[CargoCompany]:
    """Every cargo company, by name."""
    return list(session.scalars(select(CargoCompany).order_by(CargoCompany.name, CargoCompany.id)))


def get_company(session: Session, company_id: int) -> CargoCompany:
    """One cargo company; raises NotFound."""
    company = session.get(CargoCompany, company_id)
    if company is None:
        raise NotFound(_("No cargo company with id %(id)s.", id=company_id))
    return company


def read_conf(company: CargoCompany) -> dict:
    """The decrypted conf; raises ValueError when the configured keys cannot read it."""
    if not company.conf_encrypted:
        return {}
    value = json.loads(crypto.decrypt(company.conf_encrypted))
    return value if isinstance(value, dict) else {}


def conf_is_readable(company: CargoCompany) -> bool:
    """False when the stored conf cannot be decrypted with the configured keys."""
    try:
        read_conf(company)
    except ValueError:
        return False
    return True


def public_conf(company: CargoCompany) -> dict:
    """The conf as it may be shown or returned: secret fields masked; {} when it cannot be read."""
    try:
        conf = read_conf(company)
    except ValueError:
        return {}
    shipping = SHIPPING_COMPANIES.get(company.shipping_company)
    order = [f.name for f in shipping.fields] if shipping and not company.is_demo_client else []
    shown = {}
    # In the order the shipping company lists its fields (the stored JSON is sorted by key).
    for key in sorted(conf, key=lambda k: (order.index(k) if k in order else len(order), k)):
        value = conf[key]
        field = shipping.field(key) if shipping is not None and order else None
        shown[key] = settings.mask(value) if field is not None and field.secret and isinstance(value, str) else value
    return shown


def company_json(company: CargoCompany) -> dict:
    """A cargo company in the vendor's shape, with secrets masked."""
    return {"id": company.id, "name": company.name, "erp_code": company.erp_code,
            "is_managed_by_oms": company.is_managed_by_oms, "is_demo_client": company.is_demo_client,
            "shipping_company": company.shipping_company, "conf": public_conf(company)}


def _text(value: object, field: str, label: str, limit: int, *, required: bool) -> str:
    """A trimmed text input; raises ValidationFailed when missing (if required), not text or too long.

    `label` is already translated: it starts the messages.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(_("%(label)s must be text.", label=label), field=field)
    value = value.strip()
    if required and not value:
        raise ValidationFailed(_("%(label)s is required.", label=label), field=field)
    if len(value) > limit:
        raise ValidationFailed(_("%(label)s is too long (at most %(limit)s characters).", label=label, limit=limit),
                               field=field)
    return value


def _flag(value: object, field: str, label: str) -> bool:
    """A true/false input; raises ValidationFailed for anything else (`label` is already translated)."""
    if not isinstance(value, bool):
        raise ValidationFailed(_("%(label)s must be true or false.", label=label), field=field)
    return value


def _is_mask(value: str) -> bool:
    """True when a secret input is empty or the mask shown for a stored secret."""
    return not value or value.startswith(settings.MASK)


def _demo_conf(conf: dict) -> dict:
    """{"klass": ...} naming one of the demo clients; raises ValidationFailed."""
    unknown = sorted(set(conf) - {"klass"})
    if unknown:
        raise ValidationFailed(_("A demo client's conf has only klass, not %(key)s.", key=repr(unknown[0])),
                               field=f"conf.{unknown[0]}")
    if not conf.get("klass"):
        raise ValidationFailed(_("Choose a demo client."), field="conf.klass")
    if demo_client_name(conf["klass"]) is None:
        raise ValidationFailed(_("Unknown demo client; choose one of %(names)s.", names=", ".join(DEMO_CLIENTS)),
                               field="conf.klass")
    return {"klass": conf["klass"]}


def _credentials_conf(shipping: ShippingCompany, conf: dict, stored: dict) -> dict:
    """The shipping company's fields, checked; blank secrets keep the stored ones. Raises ValidationFailed."""
    unknown = sorted(set(conf) - {f.name for f in shipping.fields})
    if unknown:
        raise ValidationFailed(_("%(company)s has no field %(key)s.", company=shipping.name, key=repr(unknown[0])),
                               field=f"conf.{unknown[0]}")
    result = {}
    for field in shipping.fields:
        label = _("%(field)s (%(company)s)", field=_(field.label), company=shipping.name)
        value = _text(conf.get(field.name), f"conf.{field.name}", label, MAX_VALUE_LENGTH, required=False)
        if field.secret and _is_mask(value):
            value = stored.get(field.name) or ""
        if not value:
            if field.required:
                raise ValidationFailed(_("%(field)s is required for %(company)s.", field=_(field.label),
                                         company=shipping.name), field=f"conf.{field.name}")
            continue
        if field.kind == URL:
            value = clean_url(value, field=f"conf.{field.name}")
        result[field.name] = value
    return result


def save_company(session: Session, *, name: object, erp_code: object, is_managed_by_oms: object,
                 is_demo_client: object, shipping_company: object, conf: object, company_id: int | None = None,
                 user_id: int | None) -> tuple[CargoCompany, bool]:
    """Create or update a cargo company; returns (company, created).

    conf holds the shipping company's credential fields, or {"klass": ...} for a demo client. Raises
    ValidationFailed or NotFound; nothing is saved then.
    """
    company = get_company(session, company_id) if company_id is not None else None
    name = _text(name, "name", _("The name"), 120, required=True)
    erp_code = _text(erp_code, "erp_code", _("The ERP code"), 64, required=True)
    if not ERP_CODE.match(erp_code):
        raise ValidationFailed(_("The ERP code may hold letters, digits, '_', '-' and '.' only."), field="erp_code")
    clash = session.scalar(select(CargoCompany).where(CargoCompany.erp_code == erp_code))
    if clash is not None and (company is None or clash.id != company.id):
        raise ValidationFailed(_("Another cargo company (%(name)s) already has the ERP code %(code)s.",
                                 name=clash.name, code=erp_code), field="erp_code")
    managed = _flag(is_managed_by_oms, "is_managed_by_oms", _("Shipping management"))
    demo = _flag(is_demo_client, "is_demo_client", _("Demo client"))
    shipping = SHIPPING_COMPANIES.get(shipping_company) if isinstance(shipping_company, str) else None
    if shipping is None:
        raise ValidationFailed(_("Choose a shipping company."), field="shipping_company")
    if conf is None:
        conf = {}
    if not isinstance(conf, dict):
        raise ValidationFailed(_("conf must be an object."), field="conf")

    stored: dict = {}
    if company is not None and company.shipping_company == shipping.slug and not company.is_demo_client:
        try:
            stored = read_conf(company)
        except ValueError:
            stored = {}  # unreadable after a lost key: the secrets must be typed again
    clean = _demo_conf(conf) if demo else _credentials_conf(shipping, conf, stored)

    created = company is None
    if company is None:
        company = CargoCompany(name=name, erp_code=erp_code, shipping_company=shipping.slug)
        session.add(company)
    old_code = company.erp_code
    company.name = name
    company.erp_code = erp_code
    company.is_managed_by_oms = managed
    company.is_demo_client = demo
    company.shipping_company = shipping.slug
    company.conf_encrypted = crypto.encrypt(json.dumps(clean, sort_keys=True))
    company.updated_at = utcnow()
    if not created and old_code != erp_code:
        settings.audit(session, old_code, user_id=user_id, area=AUDIT_AREA, action="rename")
    settings.audit(session, erp_code, user_id=user_id, area=AUDIT_AREA, action="create" if created else "update")
    try:
        session.flush()
    except IntegrityError:
        # Another admin saved the same ERP code a moment ago.
        session.rollback()
        raise ValidationFailed(_("Another cargo company already has the ERP code %(code)s.", code=erp_code),
                               field="erp_code") from None
    refresh_step(session, user_id=user_id)
    session.commit()
    return company, created


def delete_company(session: Session, company_id: int, *, user_id: int | None) -> None:
    """Remove a cargo company, with an audit row. Raises NotFound."""
    company = get_company(session, company_id)
    settings.audit(session, company.erp_code, user_id=user_id, area=AUDIT_AREA, action="delete")
    session.delete(company)
    session.flush()
    refresh_step(session, user_id=user_id)
    session.commit()


def refresh_step(session: Session, *, user_id: int | None) -> None:
    """Step 14 is done when at least one cargo company exists (not committed)."""
    count = session.scalar(select(func.count(CargoCompany.id))) or 0
    wizard.settle(session, STEP_KEY, count > 0, user_id=user_id, note=_("Add a cargo company or a demo client."))
