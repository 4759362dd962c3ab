"""The package page's commands in plain words: one primary action per state, the others under "More".

One place maps each vendor command code to the words staff read, whether it can be the state's primary
action, and, for commands that move a package on without the usual check, the consequence a confirmation
step names before it runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from portal.packages.models import Transition


@dataclass(frozen=True)
class Wording:
    """How the package page shows one command code."""

    label: object  # a lazy string
    primary: bool = False
    consequence: object | None = None  # a lazy string: the command asks for a confirmation naming it


# command code -> its words; the first primary one a package offers is its primary action.
WORDINGS: dict[str, Wording] = {
    "COMPLETE_PACKAGING": Wording(_l("Pack"), primary=True),
    "READY_FOR_PICKUP": Wording(_l("Ready for pickup"), primary=True),
    "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND": Wording(_l("Hand over"), primary=True),
    "SHIP_PACKAGE": Wording(_l("Ship"), primary=True),
    "UNBLOCK_PACKAGE_FOR_ACTION": Wording(_l("Unblock"), primary=True),
    "UPDATE_SHIPMENT_STATUS": Wording(_l("Mark delivered"), primary=True),
    "RESCHEDULE_PACKAGE": Wording(_l("Reschedule"), primary=True),
    "COMPLETE_PACKAGING_WITHOUT_SHIPMENT": Wording(
        _l("Pack without scanning"),
        consequence=_l("The package is marked packed without checking a single item's barcode. "
                       "A wrong or missing item will only be noticed by the customer.")),
    "DEALLOCATE_PACKAGE_RESERVATIONS": Wording(
        _l("Release the reserved stock"),
        consequence=_l("The items reserved for this package go back to the shelf stock and the package "
                       "moves to Preparing. It cannot be undone from here.")),
    "PACKAGE_REFUSE_WITH_DENIAL_REASON": Wording(
        _l("Refuse"),
        consequence=_l("The store refuses the package: it leaves this store and needs rescheduling "
                       "elsewhere. It cannot be undone from here.")),
    "CANCEL_PACKAGE": Wording(
        _l("Cancel the package"),
        consequence=_l("The package is cancelled and the customer will not get it. It cannot be undone.")),
    "BLOCK_PACKAGE_FOR_ACTION": Wording(_l("Block")),
    "PACKAGE_PACKED_FOR_REFUND": Wording(
        _l("Refuse the whole package"),
        consequence=_l("Nothing is handed over: the package goes to Packed for Refund with every item. "
                       "It cannot be undone.")),
}

# Commands that run with one tap elsewhere but here first show a confirmation naming the consequence.
CONFIRM_TEMPLATE = "packages/_form_confirm.html"


def wording(transition: Transition) -> Wording:
    """The command's words; an unknown code (a command added in the flow editor) shows its own name."""
    return WORDINGS.get(transition.command_code) or Wording(transition.name)


def needs_confirmation(transition: Transition) -> bool:
    """True when the command moves the package on without the usual check."""
    return wording(transition).consequence is not None


@dataclass(frozen=True)
class Action:
    """One command as the page shows it."""

    transition: Transition
    form_template: str | None
    label: object
    consequence: object | None


def arrange(transitions: list[tuple[Transition, str | None]]) -> tuple[Action | None, list[Action]]:
    """Split a package's (command, form) pairs into its one primary action and the rest ("More").

    A command needing confirmation and no form of its own gets the confirmation step as its form.
    """
    actions = []
    for transition, template in transitions:
        words = wording(transition)
        if template is None and words.consequence is not None:
            template = CONFIRM_TEMPLATE
        actions.append(Action(transition, template, words.label, words.consequence))
    primary = next((action for action in actions if wording(action.transition).primary), None)
    if primary is None and len(actions) == 1 and actions[0].consequence is None:
        primary = actions[0]
    return primary, [action for action in actions if action is not primary]
