"""Dry run of a package command: what it would do, with nothing written (any token; staff see their stores only).

A separate endpoint next to the command's own, taking the same body: POST .../command/preview/. It answers
the same 400, 404 and 409 the command would, so integrators can validate a command before running it.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.resources.packages import RENAMES, CommandRequest
from portal.api.schemas import Answer, Status
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.packages import dry_run


class WebhookTarget(Answer):
    """A webhook subscription that would receive an event."""

    subscription_id: int
    target_url: str


class PreviewEvent(Answer):
    """An event the command would raise, with the subscriptions it would be delivered to."""

    event_type: str
    name: str = Field(description="The vendor's event name, when it has one.")
    payload: dict[str, Any] = Field(description="The event's payload; a pickup code in it is masked.")
    webhooks: list[WebhookTarget]


class PreviewSms(Answer):
    """An SMS the command would send."""

    to: str
    purpose: str
    body: str = Field(description="The text, with the pickup code masked.")


class PreviewAudit(Answer):
    """The audit row (package log) the command would write."""

    from_status: Status
    to_status: Status
    command: str
    transition: int | None
    user: int | None
    note: str


class CommandPreview(Answer):
    """What running the command would do. Nothing was written: no state, quota, code, event, SMS or log."""

    package: int
    package_number: str
    transition: int | None
    slug: str
    name: str
    from_status: Status
    to_status: Status
    quota_change: int = Field(description="+1, -1 or 0 on the package's stock location.")
    quota_before: int
    quota_after: int
    pickup_code_issued: bool = Field(description="Whether a new pickup code would be issued.")
    message: str
    audit: PreviewAudit
    events: list[PreviewEvent]
    sms: list[PreviewSms]

    @classmethod
    def of(cls, result: dry_run.CommandPreview) -> CommandPreview:
        """The domain's preview as the API answers it."""
        audit = result.audit
        return cls(
            package=result.package_id, package_number=result.package_number, transition=result.transition_id,
            slug=result.slug, name=result.name, from_status=Status.of_state(result.from_state),
            to_status=Status.of_state(result.to_state), quota_change=result.quota_change,
            quota_before=result.quota_before, quota_after=result.quota_after,
            pickup_code_issued=result.pickup_code_issued, message=result.message,
            audit=PreviewAudit(from_status=Status.of_state(audit.from_state), to_status=Status.of_state(audit.to_state),
                               command=audit.command, transition=audit.transition_id, user=audit.user_id,
                               note=audit.note),
            events=[PreviewEvent(event_type=e.event_type, name=e.vendor_name, payload=e.payload,
                                 webhooks=[WebhookTarget(subscription_id=w.subscription_id, target_url=w.target_url)
                                           for w in e.webhooks]) for e in result.events],
            sms=[PreviewSms(to=s.to, purpose=s.purpose, body=s.body) for s in result.sms])


@operation("POST", "/oms/packages/<int:package_id>/command/preview/",
           summary="Dry-run a command on a package: what it would do, nothing written.",
           access=Access.ANY, body=CommandRequest, answer=CommandPreview, errors=("404", "409", "422"),
           tag="packages", renames=RENAMES,
           example={"slug": "ready-for-customer-pickup", "input_parameters": {"package": 12}},
           description="Takes the body of POST .../command/ and answers what running it would do: the new "
                       "status, the quota change, the events and the webhook subscriptions they would reach, "
                       "the SMS (code masked) and the audit row. Nothing is written and no code is issued. An "
                       "invalid command answers the same error the command itself would. A pickup code is "
                       "only checked for its shape: a dry run spends no try.")
def preview_command(package_id: int, body: CommandRequest):
    """Dry-run a command on a package, named by transition id or slug."""
    params = body.input_parameters.model_dump(mode="json", exclude_unset=True) if body.input_parameters else {}
    if params.get("package") is not None and params["package"] != package_id:
        raise ValidationFailed(_("input_parameters.package does not match the package in the URL."),
                               field="input_parameters.package")
    current = caller()
    return CommandPreview.of(dry_run.preview_command(
        db.session, package_id, transition_id=body.transition, slug=body.slug or None, params=params,
        user_id=current.user_id, store_ids=current.store_ids, visibility=current.visibility))
