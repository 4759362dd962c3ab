"""A store copy from Omnitron tells subscribers: stock_location.created and .updated reach them during the copy."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from stubs.omnitron_server import credentials, omnitron_sandbox  # noqa: F401 (fixture)
from stubs.webhook_receivers import receivers  # noqa: F401 (fixture)

from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.sync import service as sync
from portal.webhooks import service as webhooks


@pytest.fixture
def app_config(omnitron_sandbox):
    """The portal talks to the sandbox and may deliver to receivers on 127.0.0.1."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "SYNC_PAGE_SIZE": 40,
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": True}


def subscribe(receiver, event_type: str):
    """A brand manager's subscription; the receiver learns the secret to verify signatures."""
    _, receiver.secret = webhooks.create_subscription(
        db.session, event_type=event_type, target_url=receiver.target_url, retry_countdown_config=None,
        additional_headers=None, user_id=None)


def run_copy():
    """Copy the stores as the worker does (the queue runs deliveries inline in tests)."""
    job = sync.start_job(db.session, "stock_locations", user_id=None)
    return sync.sync_kind(db.session, job.id, token=job.task_id)


def test_subscribers_get_each_new_store_and_each_change_signed_while_the_copy_runs(credentials, omnitron_sandbox,
                                                                                  receivers):
    created, updated = receivers("ok"), receivers("ok")
    subscribe(created, "stock_location.created")
    subscribe(updated, "stock_location.updated")

    first = run_copy()

    assert first.created > 40  # several pages, each delivered after its own commit
    assert len(created.requests) == first.created and updated.requests == []
    assert all(r.verified for r in created.requests)
    assert {r.json["payload"]["omnitron_id"] for r in created.requests} == set(range(1, first.created + 1))

    omnitron_sandbox.mutate("stock_locations", ids=[3], changes={"name": "Moda Store"})
    omnitron_sandbox.mutate("stock_locations", delete=[4])
    run_copy()

    changes = sorted((r.json["payload"]["omnitron_id"], r.json["payload"]["changed_fields"])
                     for r in updated.wait_for(2))
    assert changes == [(3, ["name"]), (4, ["is_active"])]
    assert all(r.verified for r in updated.requests)
    pending = db.session.scalars(select(OutboxMessage.status).where(OutboxMessage.status != "sent")).all()
    assert pending == []  # nothing left for the sweep
