"""Bringing a setup step's state in line with its check after an API change, as the wizard's pages do.

Temporary: the wizard step kit moves this rule into the domain functions, and these calls go away.
"""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from portal.api.auth import caller
from portal.extensions import db
from portal.setup import service as wizard


def settle(key: str, check: Callable[[Session], tuple[bool, str]]) -> None:
    """Settle step `key` by its check, in the caller's name, and commit."""
    ok, note = check(db.session)
    wizard.settle(db.session, key, ok, user_id=caller().user_id, note=note)
    db.session.commit()
