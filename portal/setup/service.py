"""The wizard's record of each step: state, who completed it and when, skips with a reason."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db_types import rowcount, utcnow
from portal.errors import ValidationFailed
from portal.i18n import N_
from portal.setup.models import SetupStep
from portal.setup.steps import BY_KEY, STEPS, Step, prerequisites

# State -> label, marked with N_ and translated where it is shown (StepStatus.label).
STATE_LABELS = {
    SetupStep.NOT_STARTED: N_("Not started"),
    SetupStep.IN_PROGRESS: N_("In progress"),
    SetupStep.DONE: N_("Done"),
    SetupStep.NEEDS_ATTENTION: N_("Needs attention"),
    SetupStep.SKIPPED: N_("Skipped"),
}
# The same colour scale as package chips: waiting, working, ready, done, problem.
STATE_CATEGORY = {
    SetupStep.NOT_STARTED: "waiting", SetupStep.IN_PROGRESS: "working", SetupStep.DONE: "done",
    SetupStep.NEEDS_ATTENTION: "problem", SetupStep.SKIPPED: "done",
}
FINISHED = (SetupStep.DONE, SetupStep.SKIPPED)


@dataclass
class StepStatus:
    """A step with its recorded state and the steps it still waits for."""

    step: Step
    record: SetupStep | None
    waiting_for: list[Step]

    @property
    def state(self) -> str:
        """The recorded state, or not started."""
        return self.record.state if self.record else SetupStep.NOT_STARTED

    @property
    def label(self) -> str:
        """The state as words, in the request's language."""
        return _(STATE_LABELS[self.state])

    @property
    def category(self) -> str:
        """The chip colour of the state."""
        return STATE_CATEGORY[self.state]

    @property
    def finished(self) -> bool:
        """Done or skipped."""
        return self.state in FINISHED

    @property
    def reason(self) -> str:
        """Why a step needs attention (its note), or "" for any other state."""
        if self.state == SetupStep.NEEDS_ATTENTION and self.record is not None:
            return self.record.note
        return ""


@dataclass
class Guide:
    """What the wizard home leads with: the next step to do and the steps that need attention."""

    statuses: list[StepStatus]
    next: StepStatus | None
    attention: list[StepStatus]

    @property
    def finished(self) -> int:
        """How many steps are done or skipped."""
        return sum(1 for s in self.statuses if s.finished)

    @property
    def total(self) -> int:
        """How many steps there are."""
        return len(self.statuses)


def _records(session: Session) -> dict[str, SetupStep]:
    """Every recorded step by key."""
    return {row.key: row for row in session.scalars(select(SetupStep))}


def _state_of(records: dict[str, SetupStep], key: str) -> str:
    """A step's recorded state, or not started when it has no row yet."""
    row = records.get(key)
    return row.state if row is not None else SetupStep.NOT_STARTED


def statuses(session: Session) -> list[StepStatus]:
    """All 15 steps in order with their state and the steps they still wait for, in the order to do them."""
    records = _records(session)
    result = []
    for step in STEPS:
        waiting = [s for s in prerequisites(step) if _state_of(records, s.key) not in FINISHED]
        result.append(StepStatus(step, records.get(step.key), waiting))
    return result


def next_step(states: list[StepStatus]) -> StepStatus | None:
    """The step to do next: the first unfinished one whose prerequisites are finished (None when all are)."""
    return next((s for s in states if not s.finished and not s.waiting_for), None)


def guide(session: Session) -> Guide:
    """The steps with the next one to do and those needing attention (in step order)."""
    states = statuses(session)
    return Guide(states, next_step(states), [s for s in states if s.state == SetupStep.NEEDS_ATTENTION])


def status(session: Session, key: str) -> StepStatus:
    """One step's status."""
    return next(s for s in statuses(session) if s.step.key == key)


def progress(session: Session) -> tuple[int, int]:
    """(finished steps, all steps); skipped steps count as finished."""
    states = statuses(session)
    return sum(1 for s in states if s.state in FINISHED), len(states)


def _record(session: Session, key: str) -> SetupStep:
    """The step's row, created on first use."""
    if key not in BY_KEY:
        raise ValidationFailed(_("Unknown setup step %(key)s.", key=repr(key)))
    row = session.scalar(select(SetupStep).where(SetupStep.key == key))
    if row is None:
        row = SetupStep(key=key)
        session.add(row)
    return row


def mark(session: Session, key: str, state: str, *, user_id: int | None, note: str = "",
         commit: bool = True) -> SetupStep:
    """Record a step's state; done records who and when. A later failure marks it as needing attention."""
    if state not in STATE_LABELS:
        raise ValidationFailed(_("Unknown step state %(state)s.", state=repr(state)))
    row = _record(session, key)
    row.state = state
    row.note = note[:1000]
    row.updated_at = utcnow()
    if state == SetupStep.DONE:
        row.completed_by_id = user_id
        row.completed_at = utcnow()
        row.skip_reason = ""
    if commit:
        session.commit()
    return row


def skip(session: Session, key: str, reason: str, *, user_id: int | None) -> SetupStep:
    """Skip a step; the reason is required and shown on the wizard home."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why this step is skipped."), field="reason")
    row = _record(session, key)
    row.state = SetupStep.SKIPPED
    row.skip_reason = reason[:1000]
    row.completed_by_id = user_id
    row.completed_at = utcnow()
    row.updated_at = utcnow()
    session.commit()
    return row


def reopen(session: Session, key: str, *, user_id: int | None) -> SetupStep:
    """Undo a skip: the step is in progress again."""
    row = _record(session, key)
    row.state = SetupStep.IN_PROGRESS
    row.skip_reason = ""
    row.updated_at = utcnow()
    session.commit()
    return row


def settle(session: Session, key: str, done: bool, *, user_id: int | None, note: str = "",
           attention: bool = False) -> None:
    """Bring a step's state in line with its check after a change (not committed).

    Passing marks it done (once); a skipped step stays skipped until its check passes; a step that was
    done, or that a failure calls out (`attention`), needs attention; anything else is in progress.
    """
    row = session.scalar(select(SetupStep).where(SetupStep.key == key))
    state = row.state if row else SetupStep.NOT_STARTED
    if done:
        if state != SetupStep.DONE:
            mark(session, key, SetupStep.DONE, user_id=user_id, commit=False)
        return
    if state == SetupStep.SKIPPED:
        return
    new = SetupStep.NEEDS_ATTENTION if attention or state in (SetupStep.DONE, SetupStep.NEEDS_ATTENTION) \
        else SetupStep.IN_PROGRESS
    if state != new or (row is not None and row.note != note[:1000]):
        mark(session, key, new, user_id=user_id, note=note, commit=False)


def lock_step(session: Session, key: str, now: datetime) -> None:
    """Serialise starts of a step's background work: write the step's row first. Not committed.

    The write holds a row lock (PostgreSQL) or the write lock (SQLite) until the caller commits, so two
    admins cannot both see "nothing running" and start a job.
    """
    touched = rowcount(session.execute(update(SetupStep).where(SetupStep.key == key).values(updated_at=now)
                                       .execution_options(synchronize_session=False)))
    if touched:
        return
    session.add(SetupStep(key=key, updated_at=now))
    try:
        session.flush()
    except IntegrityError:
        # Another start created the row at the same moment; its transaction has ended, so lock the row now.
        session.rollback()
        session.execute(update(SetupStep).where(SetupStep.key == key).values(updated_at=now)
                        .execution_options(synchronize_session=False))
