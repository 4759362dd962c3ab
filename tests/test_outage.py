"""The portal during an outage of the database or Redis: a clear 503 (the error page, the error fragment, or the
API's JSON with code "unavailable"), never a stack trace or a 500, and it recovers on the next request without a
restart. The rate limiter on an unreachable Redis lets requests through and counts in memory."""
from __future__ import annotations

import logging
import socket
import time
from contextlib import contextmanager

import pytest
import redis.exceptions
from flask import Flask
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from portal import create_app
from portal.accounts import auth
from portal.extensions import db
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages import commands
from tests.conftest import base_config


def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def database_down():
    """Every statement on the app's engine fails as when the server has gone away, until the block ends."""

    def refuse(conn, cursor, statement, parameters, context, executemany):
        """Fail the statement as a dropped connection does."""
        raise OperationalError(statement, parameters, Exception("server closed the connection unexpectedly"))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


def assert_unavailable_page(answer, says: str = "unavailable for a moment") -> None:
    """A styled, translated 503 page with Retry-After, and no trace of the exception."""
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503, page[:500]
    assert answer.mimetype == "text/html"
    assert says in page
    assert "portal.css" in page and 'class="error-page"' in page  # the error pages' layout
    assert "Traceback" not in page and "OperationalError" not in page and "SELECT" not in page
    assert int(answer.headers["Retry-After"]) > 0


def test_a_page_answers_503_while_the_database_is_down_and_works_again_after(client, make, auth_actions):
    make.user("ada")
    assert auth_actions.login("ada").status_code == 302
    with database_down():
        assert_unavailable_page(client.get("/packages"))
        fragment = client.get("/packages", headers={"HX-Request": "true"})
        assert fragment.status_code == 503
        assert "<html" not in fragment.get_data(as_text=True)
        assert "unavailable for a moment" in fragment.get_data(as_text=True)
    again = client.get("/packages")
    assert again.status_code == 200  # the same process, the same session: no restart needed


def test_the_api_answers_json_503_while_the_database_is_down_and_recovers(client, make):
    token = auth.create_api_token(db.session, make.user(role="admin"))
    headers = {"Authorization": f"Token {token}"}
    with database_down():
        answer = client.get("/api/v1/oms/transitions/", headers=headers)
        assert answer.status_code == 503
        assert answer.is_json
        assert answer.json["code"] == "unavailable"
        assert "unavailable" in answer.json["detail"]
        assert int(answer.headers["Retry-After"]) > 0
    assert client.get("/api/v1/oms/transitions/", headers=headers).status_code == 200


def test_a_command_refused_by_a_database_outage_changes_nothing(client, make, auth_actions):
    store = make.store()
    make.user("ada", stores=[store])
    package = make.package(store=store, state=500)
    package_id, model = package.id, type(package)
    assert auth_actions.login("ada").status_code == 302
    with database_down():
        answer = client.post(f"/packages/{package_id}/commands/ready-for-customer-pickup")
    assert answer.status_code == 503
    db.session.expire_all()
    assert db.session.get(model, package_id).state == 500


def test_a_server_nobody_answers_on_gives_503_not_a_stack_trace():
    app = create_app({**base_config(f"postgresql+psycopg://portal@127.0.0.1:{closed_port()}/portal"),
                      "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}}})
    client = app.test_client()
    login = client.post("/login", data={"username": "ada", "password": "whatever-1"},
                        headers={"Accept-Language": "tr"})
    assert_unavailable_page(login, says="kısa bir süre için kullanılamıyor")
    assert 'lang="tr"' in login.get_data(as_text=True)  # the page is rendered in the visitor's language
    api = client.get("/api/v1/oms/packages/", headers={"Authorization": "Token abc"})
    assert api.status_code == 503 and api.json["code"] == "unavailable"


def test_redis_unreachable_while_queueing_answers_503(app, client):
    @app.route("/_test/queue-down")
    def queue_down():
        """A view whose job queue is down."""
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    @app.route("/api/v1/_test/queue-down")
    def api_queue_down():
        """An API route whose job queue is down."""
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    page = client.get("/_test/queue-down")
    assert page.status_code == 503 and "Error 111" not in page.get_data(as_text=True)
    assert client.get("/api/v1/_test/queue-down").json["code"] == "unavailable"


@pytest.mark.postgres_only
def test_connections_the_server_dropped_are_replaced_without_an_error(client, make, auth_actions):
    """PostgreSQL restarted: the pool's connections are dead; pre-ping finds out and reconnects (no 503 at all)."""
    make.user("ada")
    assert auth_actions.login("ada").status_code == 302
    assert client.get("/packages").status_code == 200
    db.session.remove()  # as at the end of every request outside tests: its connection goes back to the pool
    other = create_engine(db.engine.url.render_as_string(hide_password=False), poolclass=NullPool)
    with other.connect() as killer:  # not from the app's pool: that holds the connection to end
        ended = killer.scalar(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user"))
    assert ended >= 1  # the pooled connection of the first request was ended by the server
    assert client.get("/packages").status_code == 200


class TestRateLimiterOnUnreachableRedis:
    """The limiter's storage is a Redis nobody answers on: requests pass, and the limits count in memory."""

    @pytest.fixture
    def app_config(self) -> dict:
        """Rate limits on, stored in a Redis that is not there."""
        return {"RATELIMIT_ENABLED": True, "API_RATE_LIMIT": "3 per minute",
                "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{closed_port()}/0"}

    def test_the_portal_answers_and_still_limits(self, client, make):
        headers = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
        answers = [client.get("/api/v1/oms/transitions/", headers=headers).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]  # the in-memory fallback keeps the limit
        assert client.get("/login").status_code == 200
        assert client.post("/login", data={"username": "nobody", "password": "x"}).status_code == 401  # checked, not an error


@contextmanager
def outcome_write_fails(times: int):
    """The first `times` writes of a sent outcome (UPDATE outbox_messages ... sent_at) fail as a dropped connection."""
    failures = {"left": times}

    def refuse(conn, cursor, statement, parameters, context, executemany):
        """Fail the outcome's UPDATE while failures are left."""
        if statement.startswith("UPDATE outbox_messages") and "sent_at" in statement and failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError(statement, parameters, Exception("server closed the connection unexpectedly"))

    event.listen(db.engine, "before_cursor_execute", refuse)
    try:
        yield failures
    finally:
        event.remove(db.engine, "before_cursor_execute", refuse)


def test_a_sent_sms_whose_outcome_cannot_be_written_at_once_is_not_sent_again(app, sms):
    """PostgreSQL restarts between the provider's answer and the outcome's write: the write is retried, so the
    message is marked sent once, and the customer does not get the SMS twice when its lease runs out."""
    message = outbox.enqueue_sms(db.session, to="+905551112233", body="Your code is 123456", package_id=None)
    db.session.commit()
    with outcome_write_fails(2) as failures:
        outcome = outbox.process_message(db.session, message.id)
    assert failures["left"] == 0  # both failures happened, and the third write went through
    assert outcome is not None and outcome.status == OutboxMessage.SENT
    db.session.expire_all()
    stored = db.session.get(OutboxMessage, message.id)
    assert (stored.status, stored.attempts, stored.lease_until) == (OutboxMessage.SENT, 1, None)
    assert len(sms.outbox) == 1


def test_a_write_that_keeps_failing_gives_up_before_the_lease_runs_out(app, sms):
    """An outage longer than the lease: the worker stops retrying (the sweep takes the message over)."""
    app.config["OUTBOX_LEASE_SECONDS"] = 6  # the margin is 5 s: about a second of retries
    message = outbox.enqueue_sms(db.session, to="+905551112233", body="Your code is 123456", package_id=None)
    db.session.commit()
    with outcome_write_fails(1000) as failures:
        outbox.process_message(db.session, message.id)
    assert 1 < 1000 - failures["left"] < 20  # retried a few times, then gave up


class _DriverError(Exception):
    """A driver error with a SQLSTATE, as psycopg raises."""

    def __init__(self, message: str, sqlstate: str | None):
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("orig", "invalidated", "contention"), [
    (_DriverError("deadlock detected", "40P01"), False, True),
    (_DriverError("could not serialize access", "40001"), False, True),
    (_DriverError("could not obtain lock on row", "55P03"), False, True),
    (_DriverError("terminating connection due to administrator command", "57P01"), False, False),
    (_DriverError("the database system is shutting down", "57P03"), False, False),
    (Exception("database is locked"), False, True),
    (Exception("server closed the connection unexpectedly"), False, False),
    (_DriverError("deadlock detected", "40P01"), True, False),
])
def test_contention_is_told_from_an_outage(orig, invalidated, contention):
    error = OperationalError("UPDATE packages", {}, orig, connection_invalidated=invalidated)
    assert commands.is_contention(error) is contention


def test_a_command_whose_database_goes_away_answers_503_not_409(client, make, auth_actions):
    store = make.store()
    make.user("ada", stores=[store])
    package_id = make.package(store=store, state=500).id
    assert auth_actions.login("ada").status_code == 302

    def refuse(conn, cursor, statement, parameters, context, executemany):
        """The package's UPDATE meets a server that has gone away."""
        if statement.startswith("UPDATE packages"):
            raise OperationalError(statement, parameters, Exception("server closed the connection unexpectedly"))

    event.listen(db.engine, "before_cursor_execute", refuse)
    try:
        answer = client.post(f"/packages/{package_id}/commands/ready-for-customer-pickup")
    finally:
        event.remove(db.engine, "before_cursor_execute", refuse)
    assert_unavailable_page(answer)


class TestApiLimiterDuringAnOutage:
    """The API's rate-limit key needs the token's row: during an outage it falls back to the address, and the
    request answers 503 (the limiter must not swallow the error and leave a broken transaction for the view)."""

    @pytest.fixture
    def app_config(self) -> dict:
        """Rate limits on."""
        return {"RATELIMIT_ENABLED": True, "API_RATE_LIMIT": "100 per minute"}

    def test_the_api_answers_503_then_200(self, client, make):
        headers = {"Authorization": f"Token {auth.create_api_token(db.session, make.user(role='admin'))}"}
        with database_down():
            answer = client.get("/api/v1/oms/transitions/", headers=headers)
        assert answer.status_code == 503 and answer.json["code"] == "unavailable"
        assert client.get("/api/v1/oms/transitions/", headers=headers).status_code == 200


def _app_without_a_pushed_context(database) -> Flask:
    """A portal app whose requests each push and pop their own app context, as in production (the `app` fixture
    keeps one context pushed for the whole test, so its requests never run the session's teardown)."""
    return create_app(base_config(database.url))


def test_an_answer_stands_when_the_rollback_that_ends_its_session_fails(database, caplog):
    """The database goes away after a request's last statement: ending the session (a ROLLBACK) fails. The answer
    already made is sent (before the fix the teardown's error replaced it with the server's bare 500), the broken
    session is dropped, and the next request works."""
    app = _app_without_a_pushed_context(database)
    failures = {"left": 1}

    @app.route("/_test/read")
    def read():
        """A page that reads, so its session holds a transaction when the request ends."""
        return str(db.session.scalar(text("SELECT 1")))

    def refuse(conn):
        """The ROLLBACK fails as on a connection the server has just ended."""
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("ROLLBACK", None, Exception("terminating connection due to administrator command"))

    with app.app_context():
        engine = db.engine
    caplog.set_level(logging.DEBUG, logger="portal.web")
    event.listen(engine, "rollback", refuse)
    try:
        client = app.test_client()
        answer = client.get("/_test/read")
        assert failures["left"] == 0  # the ROLLBACK that ends the session did fail
        assert (answer.status_code, answer.get_data(as_text=True)) == (200, "1")
        assert "the database went away before the request's session ended" in caplog.text
        assert "invalidating the session after an outage failed" not in caplog.text  # the session was invalidated
        assert client.get("/_test/read").get_data(as_text=True) == "1"
    finally:
        event.remove(engine, "rollback", refuse)
        with app.app_context():
            db.engine.dispose()


@pytest.mark.postgres_only
def test_an_answer_stands_when_postgresql_ends_the_connection_before_the_request_ends(database):
    """The real thing: the server ends the request's connection (as `pg_ctl stop -m fast` does) after its last
    statement; the ROLLBACK at the end fails with "terminating connection due to administrator command"."""
    app = _app_without_a_pushed_context(database)
    killer_engine = create_engine(database.url, poolclass=NullPool)

    @app.route("/_test/ended")
    def ended():
        """Read, then have the server end this connection, and answer."""
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        with killer_engine.connect() as killer:
            assert killer.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(100):  # until the backend has gone (the ROLLBACK must meet an ended connection)
                if not killer.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}):
                    break
                time.sleep(0.02)
        return "ok"

    try:
        client = app.test_client()
        answer = client.get("/_test/ended")
        assert (answer.status_code, answer.get_data(as_text=True)) == (200, "ok")
        assert client.get("/_test/ended").status_code == 200  # a new connection from the pool
    finally:
        killer_engine.dispose()
        with app.app_context():
            db.engine.dispose()
