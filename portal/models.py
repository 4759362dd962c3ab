"""Imports every model so that Alembic and create_all see the whole schema."""
from portal.accounts.models import ApiToken, LoginSession, LoginThrottle, Role, User, user_stock_locations
from portal.cargo.models import CargoCompany
from portal.idempotency.models import IdempotencyRecord
from portal.integrations.models import StockIntegration
from portal.jobs.models import JobRun, ScheduledJob
from portal.orders.models import OrderImportRun
from portal.otp.models import OtpAttempt, PickupCode
from portal.outbox.models import OutboxMessage
from portal.packages.delegate_models import PackageDelegate
from portal.packages.handover_lines import HandoverLine
from portal.packages.models import (
    Customer,
    DenialReason,
    HoldSweepRun,
    Package,
    PackageItem,
    PackageLog,
    PackingScan,
    Transition,
)
from portal.packages.shelf_models import ShelfAssignment, ShelfSettings, ShelfSlot
from portal.packages.shipment_models import Shipment, ShipmentTrackingRun
from portal.scenarios.models import Scenario, ScenarioLocation
from portal.settings.models import ApplicationSetting, SettingChange
from portal.setup.models import SetupStep
from portal.stores.models import StockLocation
from portal.sync.models import AddressNode, Channel, SyncJob
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

__all__ = [
    "AddressNode", "ApiToken", "ApplicationSetting", "CargoCompany", "Channel", "Customer", "DeliveryAttempt",
    "DenialReason", "HandoverLine", "HoldSweepRun", "IdempotencyRecord", "JobRun", "LoginSession", "LoginThrottle",
    "OrderImportRun", "OtpAttempt", "OutboxMessage", "Package", "PackageDelegate",
    "PackageItem", "PackageLog", "PackingScan", "PickupCode", "Role", "Scenario", "ScenarioLocation", "ScheduledJob",
    "ShelfAssignment", "ShelfSettings", "ShelfSlot", "Shipment", "ShipmentTrackingRun",
    "SettingChange", "SetupStep", "StockIntegration", "StockLocation", "SyncJob", "Transition", "User",
    "user_stock_locations", "WebhookSubscription",
]
