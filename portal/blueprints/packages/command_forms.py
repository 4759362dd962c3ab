"""Which commands ask for input before they run, and how their form fields become input_parameters."""
from __future__ import annotations

from portal.blueprints.packages.actions import CONFIRM_TEMPLATE, needs_confirmation
from portal.packages.models import Transition
from portal.web import plain_int

# command code -> the form template the modal shows
FORM_TEMPLATES = {
    "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND": "packages/_form_handover.html",
    "COMPLETE_PACKAGING": "packages/_form_barcodes.html",
    "PACKAGE_REFUSE_WITH_DENIAL_REASON": "packages/_form_denial.html",
    "BLOCK_PACKAGE_FOR_ACTION": "packages/_form_block.html",
    "CANCEL_PACKAGE": "packages/_form_block.html",
    "SHIP_PACKAGE": "packages/_form_ship.html",
    "PACKAGE_PACKED_FOR_REFUND": "packages/_form_refund.html",
}


def form_template(transition: Transition, otp_enabled: bool) -> str | None:
    """The modal form for a command, or None when the command runs with one tap."""
    if transition.command_code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND" and not otp_enabled:
        return None
    template = FORM_TEMPLATES.get(transition.command_code)
    if template is None and needs_confirmation(transition):
        return CONFIRM_TEMPLATE  # no input, but a confirmation step that names the consequence
    return template


def params_from_form(transition: Transition, form) -> dict:
    """Turn posted form fields into the command's input_parameters, as the API would send them."""
    code = transition.command_code
    if code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND":
        return {"otp": form.get("otp", "")}
    if code == "COMPLETE_PACKAGING":
        barcodes = []
        for name, value in form.items():
            order_item = plain_int(name[8:]) if name.startswith("barcode_") else None
            if order_item is not None and value.strip():
                barcodes.append({"order_item": order_item, "barcode": value.strip()})
        return {"barcodes": barcodes}
    if code == "PACKAGE_REFUSE_WITH_DENIAL_REASON":
        # The select posts a reason's id; anything else (a forged or huge number) is "no reason chosen".
        reason = plain_int(form.get("denial_reason", ""))
        return {"denial_reason": reason if reason is not None else ""}
    if code in ("BLOCK_PACKAGE_FOR_ACTION", "CANCEL_PACKAGE"):
        return {"reason": form.get("reason", "")}
    if code == "PACKAGE_PACKED_FOR_REFUND":
        return {"otp": form.get("otp", ""), "reason": form.get("reason", "")}
    if code == "SHIP_PACKAGE":
        return {"tracking_number": form.get("tracking_number", "")}
    return {}
