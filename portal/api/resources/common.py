"""Small look-ups several resources share."""
from __future__ import annotations

from sqlalchemy import select

from portal.accounts.models import User
from portal.extensions import db


def usernames(user_ids: set[int | None]) -> dict[int, str]:
    """Usernames by id (for who started runs); unknown and empty ids are left out."""
    wanted = {i for i in user_ids if i}
    if not wanted:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(User.id.in_(wanted))).tuples().all())
