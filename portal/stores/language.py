"""A store's language and time zone: the language its customers' SMS are written in (when their order names
none) and the zone its pages show times in. Set with `flask store-language ERP_CODE --language tr`."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import NotFound, ValidationFailed
from portal.i18n import SUPPORTED_LOCALES, supported
from portal.stores.models import StockLocation


def set_store_language(session: Session, erp_code: str, *, language: str | None = None,
                       timezone: str | None = None) -> StockLocation:
    """Change the store's customer language ("" : CUSTOMER_LANGUAGE) and/or time zone; commits.

    Raises NotFound for an unknown ERP code, ValidationFailed for a language without a catalogue or an unknown zone.
    """
    store = session.scalar(select(StockLocation).where(StockLocation.erp_code == erp_code))
    if store is None:
        raise NotFound(_("No store with ERP code %(code)r.", code=erp_code))
    if language is not None:
        code = supported(language) if language else ""
        if code is None:
            raise ValidationFailed(_("%(field)s must be one of: %(choices)s.", field="language",
                                     choices=", ".join(SUPPORTED_LOCALES)), field="language")
        store.language = code
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationFailed(_("Unknown time zone %(name)r.", name=timezone), field="timezone") from None
        store.timezone = timezone
    session.commit()
    return store
