"""The vendor's package flow as first installed (migration 0001). Frozen: later changes go in new migrations."""
from portal.packages.states import State

BOTH = ["OMS_WEB", "INSTORE"]
WEB = ["OMS_WEB"]

VENDOR_FLOW_V1 = [
    # (slug, name, command_code, source, destination, visibility)
    ("deallocate-package-reservations", "DeAllocate Package Reservations", "DEALLOCATE_PACKAGE_RESERVATIONS",
     State.WAITING, State.PREPARING, BOTH),
    ("complete-packaging-without-shipment", "Complete Packaging Without Shipment",
     "COMPLETE_PACKAGING_WITHOUT_SHIPMENT", State.WAITING, State.PACKED, BOTH),
    ("complete-packaging-from-waiting", "Complete Packaging", "COMPLETE_PACKAGING",
     State.WAITING, State.PACKED, BOTH),
    ("complete-packaging-from-preparing", "Complete Packaging", "COMPLETE_PACKAGING",
     State.PREPARING, State.PACKED, BOTH),
    ("complete-packaging-from-ready-for-packaging", "Complete Packaging", "COMPLETE_PACKAGING",
     State.READY_FOR_PACKAGING, State.PACKED, BOTH),
    ("ready-for-customer-pickup", "Ready For Customer Pickup", "READY_FOR_PICKUP",
     State.PACKED, State.READY_FOR_CUSTOMER_PICKUP, BOTH),
    ("self-service-package-delivery", "Self Service Package Delivery", "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND",
     State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED, BOTH),
    ("ship-the-package", "Ship The Package", "SHIP_PACKAGE", State.PACKED, State.SHIPPED, BOTH),
    ("update-shipment-status-shipped", "Update The Package's Shipment Status", "UPDATE_SHIPMENT_STATUS",
     State.SHIPPED, State.DELIVERED, WEB),
    ("update-shipment-status-attempted-delivery", "Update The Package's Shipment Status",
     "UPDATE_SHIPMENT_STATUS", State.ATTEMPTED_DELIVERY, State.DELIVERED, WEB),
    ("update-shipment-status-delivery-failed", "Update The Package's Shipment Status", "UPDATE_SHIPMENT_STATUS",
     State.DELIVERY_FAILED, State.DELIVERED, WEB),
    ("refuse-with-denial-reason-from-waiting", "Refuse With Denial Reason", "PACKAGE_REFUSE_WITH_DENIAL_REASON",
     State.WAITING, State.NEEDS_RESCHEDULING, BOTH),
    ("refuse-with-denial-reason-from-waiting-remote-action", "Refuse With Denial Reason",
     "PACKAGE_REFUSE_WITH_DENIAL_REASON", State.WAITING_REMOTE_ACTION, State.NEEDS_RESCHEDULING, BOTH),
    ("refuse-with-denial-reason-from-preparing", "Refuse With Denial Reason", "PACKAGE_REFUSE_WITH_DENIAL_REASON",
     State.PREPARING, State.NEEDS_RESCHEDULING, BOTH),
    ("unblock-the-package-for-action", "Unblock The Package For Action", "UNBLOCK_PACKAGE_FOR_ACTION",
     State.BLOCKED, None, WEB),
] + [
    (f"block-the-package-for-action-from-{state.name.lower().replace('_', '-')}", "Block The Package For Action",
     "BLOCK_PACKAGE_FOR_ACTION", state, State.BLOCKED, WEB)
    for state in (State.WAITING, State.WAITING_REMOTE_ACTION, State.PREPARING, State.READY_FOR_PACKAGING,
                  State.PACKED, State.READY_FOR_CUSTOMER_PICKUP)
]

DENIAL_REASONS_V1 = [
    # (title, remote_id, priority, is_active)
    ("Product not found in store", "NOT_FOUND", 10, True),
    ("Product damaged", "DAMAGED", 20, True),
    ("Wrong product in stock", "WRONG_PRODUCT", 30, True),
    ("Store cannot prepare today", "STORE_BUSY", 40, True),
    ("Old reason (no longer used)", "LEGACY", 99, False),
]

SETTINGS_V1 = [("IS_OTP_ENABLED", True)]


def transition_rows() -> list[dict]:
    """VENDOR_FLOW_V1 as rows for the transitions table."""
    return [
        {"slug": slug, "name": name, "command_code": code, "source_state": int(src),
         "destination_state": None if dst is None else int(dst), "visibility": list(vis), "configuration": {},
         "is_active": True, "position": i}
        for i, (slug, name, code, src, dst, vis) in enumerate(VENDOR_FLOW_V1, start=1)
    ]


def denial_reason_rows() -> list[dict]:
    """DENIAL_REASONS_V1 as rows."""
    return [{"title": t, "remote_id": r, "priority": p, "is_active": a}
            for (t, r, p, a) in DENIAL_REASONS_V1]


def setting_rows() -> list[dict]:
    """SETTINGS_V1 as rows."""
    return [{"key": k, "json_value": v} for (k, v) in SETTINGS_V1]
