"""Dry run of a command: what running it would do, with nothing written.

preview_command() takes the same path as commands.run_command (the same checks, the same handler,
the same writes of state, quota, audit row, events and SMS) inside the session's transaction, reads
back what was written, and then rolls the whole transaction back. A commit during a dry run is
refused by a listener on the session, so no handler can leak a write; the outbox's after-rollback
hook forgets the messages, so nothing is queued either. A dry run of a command that checks a pickup
code only checks the code's shape: it is not a free guess and spends no try.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.orm import Session, scoped_session

from portal import crypto
from portal.errors import DomainError
from portal.outbox.models import OutboxMessage
from portal.packages import commands, flow_editor, handover_lines, partial, quota
from portal.packages.models import DenialReason, Package, Transition
from portal.packages.states import state_info
from portal.webhooks.models import WebhookSubscription

MASK = "•"


@dataclass
class WebhookPreview:
    """A subscription that would receive an event."""

    subscription_id: int
    target_url: str


@dataclass
class EventPreview:
    """An event the command would raise, and the webhooks it would fan out to."""

    event_type: str
    vendor_name: str
    payload: dict
    webhooks: list[WebhookPreview]


@dataclass
class SmsPreview:
    """An SMS the command would send; any pickup code in it is masked."""

    to: str
    purpose: str
    body: str


@dataclass
class AuditPreview:
    """The audit row (package log) the command would write."""

    from_state: int
    to_state: int
    command: str
    transition_id: int | None
    user_id: int | None
    note: str


@dataclass
class CommandPreview:
    """What running a command would do. Nothing of it was written."""

    package_id: int
    package_number: str
    transition_id: int | None
    slug: str
    name: str
    from_state: int
    to_state: int
    quota_change: int
    quota_before: int
    quota_after: int
    pickup_code_issued: bool
    message: str
    audit: AuditPreview
    events: list[EventPreview] = field(default_factory=list)
    sms: list[SmsPreview] = field(default_factory=list)

    @property
    def webhook_count(self) -> int:
        """How many webhook deliveries the events would fan out to."""
        return sum(len(e.webhooks) for e in self.events)


def _refuse_commit(session: Session) -> None:
    """The dry run's guard: any commit while it runs is a bug that would leak writes."""
    raise RuntimeError("a dry run never commits")


def mask(value: Any, secrets: list[str]) -> Any:
    """value with every secret replaced by dots, in strings, lists and dicts."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK * len(secret))
        return value
    if isinstance(value, dict):
        return {key: mask(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [mask(item, secrets) for item in value]
    return value


def preview_command(
    session: Session, package_id: int, *, transition_id: object = None, slug: object = None,
    transition: Transition | None = None, params: dict | None = None, user_id: int | None,
    store_ids: list[int] | None, visibility: str | None = None,
) -> CommandPreview:
    """Run a command as a dry run and return what it would do; the session is rolled back afterwards.

    Takes the arguments of commands.run_command (transition, when given, is an unsaved command from
    the transitions editor). Raises the same NotFound, ValidationFailed and CommandRejected the real
    run would, so a dry run validates a command. Call it with nothing pending in the session.
    """
    real = session() if isinstance(session, scoped_session) else session
    event.listen(real, "before_commit", _refuse_commit)
    try:
        package, transition, impl = commands.checked_command(
            real, package_id, transition_id=transition_id, slug=slug, transition=transition,
            store_ids=store_ids, visibility=visibility)
        quota_before = package.stock_location.quota or 0
        ctx = commands.CommandContext(session=real, package=package, transition=transition,
                                      params=dict(params or {}), user_id=user_id,
                                      destination=transition.destination_state, dry_run=True)
        impl.run(ctx)
        from_state, to_state, raised = commands.apply_command(ctx)
        real.flush()
        return _describe(real, ctx, from_state, to_state, raised, quota_before)
    finally:
        real.rollback()
        event.remove(real, "before_commit", _refuse_commit)


def preview_partial_pickup(session: Session, package_id: int, *, code: object, refused: object,
                           user_id: int | None, store_ids: list[int] | None,
                           visibility: str | None = None) -> list[CommandPreview]:
    """Dry-run a handover where the customer refuses items (portal.packages.partial): what each command would do.

    Partly refused: the delivery of the package and Package Packed for Refund of the package split off (its id
    and number are what they would be now). Nothing refused: the delivery; everything refused: the package's
    own Packed for Refund. Nothing is written; the session is rolled back. Raises what the handover would.
    """
    real = session() if isinstance(session, scoped_session) else session
    event.listen(real, "before_commit", _refuse_commit)
    try:
        delivery = partial.counter_transition(real, partial.DELIVERY_CODE)
        package, transition, impl = commands.checked_command(real, package_id, transition=delivery,
                                                             store_ids=store_ids, visibility=visibility)
        refusals = handover_lines.parse_refused(refused, package)
        whole = None
        if not refusals:
            whole = (transition, {"otp": code})
        elif handover_lines.refuses_everything(package, refusals):
            whole = (partial.counter_transition(real, partial.REFUND_CODE), {"otp": code, "refused": refused})
        if whole is None:
            quota_before = package.stock_location.quota or 0
            steps, _lines = partial.apply_partial(real, package, transition, impl, refusals, code=code,
                                                  user_id=user_id, dry_run=True)
            real.flush()
            return [_describe(real, step.ctx, step.from_state, step.to_state, step.raised, quota_before)
                    for step in steps]
    finally:
        real.rollback()
        event.remove(real, "before_commit", _refuse_commit)
    return [preview_command(real, package_id, transition_id=whole[0].id, params=whole[1], user_id=user_id,
                            store_ids=store_ids)]


def _describe(session: Session, ctx: commands.CommandContext, from_state: int, to_state: int,
              raised: list, quota_before: int) -> CommandPreview:
    """Read back what the dry run wrote, as plain values that outlive the rollback."""
    package, transition, secrets = ctx.package, ctx.transition, ctx.secrets
    targets = dict(session.execute(select(WebhookSubscription.id, WebhookSubscription.target_url)).tuples().all())
    previews = []
    for new in raised:
        payload = {**new.payload, **(new.secret_payload or {})} if new.subscription_ids else dict(new.payload)
        previews.append(EventPreview(
            event_type=new.event_type, vendor_name=new.vendor_name, payload=mask(payload, secrets),
            webhooks=[WebhookPreview(sid, targets.get(sid, "")) for sid in new.subscription_ids]))
    sms = []
    for message_id in ctx.sms_ids:
        message = session.get(OutboxMessage, message_id)
        if message is not None:
            sms.append(SmsPreview(to=message.payload.get("to", ""), purpose=message.payload.get("purpose", ""),
                                  body=mask(crypto.decrypt(message.body_encrypted or ""), secrets)))
    delta = quota.change_for(from_state, to_state)
    return CommandPreview(
        package_id=package.id, package_number=package.number, transition_id=transition.id, slug=transition.slug,
        name=transition.name, from_state=from_state, to_state=to_state, quota_change=delta,
        quota_before=quota_before, quota_after=max(0, quota_before + delta), pickup_code_issued=bool(secrets),
        message=mask(ctx.toast, secrets),
        audit=AuditPreview(from_state=from_state, to_state=to_state, command=transition.slug,
                           transition_id=transition.id, user_id=ctx.user_id, note=mask(ctx.note, secrets)),
        events=previews, sms=sms)


def sample_params(session: Session, package: Package, transition: Transition) -> dict:
    """Parameters that let a command's dry run go through: every item scanned, a code of the right shape,
    the first active denial reason. The screens' previews use them; the API takes the caller's own."""
    code = transition.command_code
    if code == "COMPLETE_PACKAGING":
        return {"barcodes": [{"order_item": item.order_item, "barcode": item.barcode} for item in package.items]}
    if code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND":
        return {"otp": "0" * int(current_app.config["OTP_LENGTH"])}
    if code == "PACKAGE_PACKED_FOR_REFUND":  # at the counter: the customer refuses every item
        return {"otp": "0" * int(current_app.config["OTP_LENGTH"]), "reason": "changed_mind"}
    if code == "PACKAGE_REFUSE_WITH_DENIAL_REASON":
        reason = session.scalar(select(DenialReason.id).where(DenialReason.is_active.is_(True))
                                .order_by(DenialReason.priority, DenialReason.id).limit(1))
        return {"denial_reason": reason} if reason is not None else {}
    return {}


def sample_package_id(session: Session, source_state: int, store_ids: list[int] | None) -> int | None:
    """The newest package in a command's source state (in the given stores), to preview the command on."""
    stmt = select(Package.id).where(Package.state == source_state)
    if store_ids is not None:
        stmt = stmt.where(Package.stock_location_id.in_(store_ids))
    return session.scalar(stmt.order_by(Package.id.desc()).limit(1))


def state_label(state: int) -> str:
    """A state's label, for the preview's screens."""
    return str(state_info(state).label)


@dataclass
class EditedPreview:
    """The transitions editor's preview: the sample package, and what the command would do to it or why it
    would be refused. sample_id is None when no package is in the command's source state."""

    sample_id: int | None
    preview: CommandPreview | None = None
    refused: str | None = None


def preview_edited_command(session: Session, data: dict, *, transition_id: int | None, user_id: int | None,
                           store_ids: list[int] | None) -> EditedPreview:
    """Dry-run a command as the transitions editor has it (saved or not) on a sample package.

    data is the editor's form (flow_editor.form_data); it is validated as saving would (ValidationFailed
    naming the field). The sample is the newest package in the command's source state; with none there,
    no synthetic package is made up. Nothing is written; the session is rolled back.
    """
    try:
        fields = flow_editor.validate_transition(session, data, transition_id)
        sample = sample_package_id(session, fields["source_state"], store_ids)
        package = session.get(Package, sample) if sample is not None else None
    finally:
        session.rollback()
    if package is None:
        return EditedPreview(sample_id=None)
    edited = Transition(id=transition_id, position=0, **fields)  # transient: never added to the session
    params = sample_params(session, package, edited)
    try:
        return EditedPreview(sample, preview_command(session, package.id, transition=edited, params=params,
                                                     user_id=user_id, store_ids=store_ids))
    except DomainError as exc:
        return EditedPreview(sample, refused=exc.message)
