"""The login storm at shift start: what one login costs the database, and Argon2id checks taking turns per process."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, func, select

from portal.accounts import auth
from portal.accounts.models import LoginSession
from portal.extensions import db


class _SlowHasher:
    """Stands in for the Argon2id hasher: each check takes a while and the most running at once is recorded."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        """A check of 30 ms that counts how many run beside it."""
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.03)
        with self._lock:
            self.running -= 1
        return password == "right"


def _check_at_once(app, checks: int) -> int:
    """Run this many password checks on as many threads at once; the most that ran together."""
    hasher = _SlowHasher()
    start = threading.Barrier(checks)

    def one() -> None:
        with app.app_context():
            start.wait()
            assert auth.verify_password("stored", "right")

    threads = [threading.Thread(target=one) for _ in range(checks)]
    original = auth._hasher_and_dummy
    auth._hasher_and_dummy = lambda: (hasher, "dummy")  # type: ignore[assignment]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        auth._hasher_and_dummy = original
    return hasher.most


def test_one_argon2_check_runs_at_a_time_per_process_by_default(app):
    assert app.config["ARGON2_CONCURRENCY"] == 1

    assert _check_at_once(app, 6) == 1


def test_argon2_concurrency_lets_that_many_checks_run_together(app):
    app.config["ARGON2_CONCURRENCY"] = 3

    assert _check_at_once(app, 6) == 3


def test_a_login_through_the_form_costs_two_commits(app, client, make):
    make.user("zeynep")
    commits = []
    listener = lambda connection: commits.append(connection)  # noqa: E731
    event.listen(db.engine, "commit", listener)
    try:
        response = client.post("/login", data={"username": "zeynep", "password": "correct-horse-1"})
    finally:
        event.remove(db.engine, "commit", listener)

    assert response.status_code == 302
    # The attempt counted (before the slow check, so concurrent attempts see it), then the success: the
    # throttle reset and the new login session together.
    assert len(commits) == 2
    assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 1
    assert client.get("/packages").status_code == 200


@pytest.mark.parametrize("password", ["wrong-password", "correct-horse-1"])
def test_log_in_refuses_or_starts_one_session(app, make, password):
    user = make.user("zeynep")

    if password == "wrong-password":
        with pytest.raises(auth.ValidationFailed):
            auth.log_in(db.session, "zeynep", password)
        assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 0
    else:
        done = auth.log_in(db.session, "zeynep", password)
        logged_in, key = done.user, done.session_key
        assert logged_in.id == user.id
        db.session.rollback()  # nothing left uncommitted: the session survives a rollback
        assert auth.user_for_session(db.session, user.id, key) is not None
