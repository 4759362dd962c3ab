"""Imports every model so that Alembic and create_all see the whole schema."""
from portal.accounts.models import ApiToken, Role, User, user_stock_locations
from portal.api.models import IdempotencyRecord
from portal.outbox.models import OutboxMessage
from portal.otp.models import OtpAttempt, PickupCode
from portal.packages.models import Customer, DenialReason, Package, PackageItem, PackageLog, Transition
from portal.settings.models import ApplicationSetting, SettingChange
from portal.stores.models import StockLocation

__all__ = [
    "ApiToken", "ApplicationSetting", "Customer", "DenialReason", "IdempotencyRecord", "OtpAttempt",
    "OutboxMessage", "Package", "PackageItem", "PackageLog", "PickupCode", "Role", "SettingChange",
    "StockLocation", "Transition", "User", "user_stock_locations",
]
