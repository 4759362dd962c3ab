"""Copying addresses, stores and channels from the Omnitron sandbox over real HTTP (setup steps 4 to 6)."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update
from stubs.omnitron_server import USERNAME, credentials, omnitron_sandbox, omnitron_sandbox_factory  # noqa: F401

from portal.db_types import utcnow
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.queue import huey
from portal.seed import DEMO_STORES, seed_omnitron_login, seed_stores
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.stores.models import StockLocation
from portal.sync import service as sync
from portal.sync.models import AddressNode, Channel, SyncJob

PAGE_SIZE = 500


@pytest.fixture
def app_config(omnitron_sandbox):
    """The portal talks to the sandbox, retries without waiting, and reads 500 records a page."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "SYNC_PAGE_SIZE": PAGE_SIZE}


def remote_counts(sandbox) -> dict[str, int]:
    """How many records each sandbox list has."""
    with sandbox.client() as client:
        return {name: client.count(f"/api/v1/{name}/") for name in
                ("countries", "cities", "townships", "districts", "stock_locations", "channels")}


def address_counts() -> dict[str, int]:
    """Address nodes in the portal per level."""
    return dict(db.session.execute(select(AddressNode.level, func.count()).group_by(AddressNode.level)).all())


def run(kind: str, user_id: int | None = None) -> SyncJob:
    """Start a job of a kind and run it here, as a worker would."""
    job = sync.start_job(db.session, kind, user_id=user_id)
    return sync.sync_kind(db.session, job.id, token=job.task_id)


def test_addresses_copy_every_level_parents_first(credentials, omnitron_sandbox, make):
    admin = make.user("ayse", role="admin")
    remote = remote_counts(omnitron_sandbox)
    assert sync.is_required(db.session, "addresses") is True

    job = run("addresses", admin.id)

    assert job.status == SyncJob.DONE
    total = remote["countries"] + remote["cities"] + remote["townships"] + remote["districts"]
    assert (job.total, job.processed, job.created, job.updated, job.unchanged, job.failed) == (
        total, total, total, 0, 0, 0)
    assert address_counts() == {"country": 1, "city": remote["cities"], "township": remote["townships"],
                                "district": remote["districts"]}
    # Every node hangs under a parent of the level above.
    kadikoy = db.session.scalar(select(AddressNode).where(AddressNode.level == "township",
                                                          AddressNode.name == "Kadıköy"))
    city = db.session.scalar(select(AddressNode).where(AddressNode.level == "city",
                                                       AddressNode.omnitron_id == kadikoy.parent_omnitron_id))
    assert city.name == "İstanbul"
    orphans = db.session.scalar(
        select(func.count()).select_from(AddressNode).where(
            AddressNode.level == "district",
            AddressNode.parent_omnitron_id.not_in(
                select(AddressNode.omnitron_id).where(AddressNode.level == "township"))))
    assert orphans == 0
    assert job.cursor["resource"] == "district" and job.cursor["complete"] is True
    step = wizard.status(db.session, "addresses")
    assert step.state == SetupStep.DONE
    assert step.record.completed_by_id == admin.id
    assert f"{total:,} addresses read from Omnitron: {total:,} created" in step.record.note
    assert sync.is_required(db.session, "addresses") is False


def test_a_second_copy_changes_nothing_and_writes_no_record(credentials, app):
    run("addresses")
    before = {row.id: (row.name, row.synced_at) for row in db.session.scalars(select(AddressNode))}
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        """Keep every SQL statement the second copy sends."""
        statements.append(statement.strip().upper())

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        job = run("addresses")
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)

    assert job.status == SyncJob.DONE
    assert (job.created, job.updated, job.failed) == (0, 0, 0)
    assert job.unchanged == job.processed == len(before)
    assert not [s for s in statements if s.startswith(("INSERT INTO ADDRESS_NODES", "UPDATE ADDRESS_NODES",
                                                       "DELETE"))]
    # One SELECT of existing rows per page (plus one parent check), never one per record.
    selects = [s for s in statements if s.startswith("SELECT") and "FROM ADDRESS_NODES" in s]
    assert len(selects) < 40
    db.session.expire_all()
    assert {row.id: (row.name, row.synced_at) for row in db.session.scalars(select(AddressNode))} == before


def test_changes_in_omnitron_make_a_copy_required_and_are_counted_as_updated(credentials, omnitron_sandbox):
    run("addresses")
    run("channels")
    assert sync.is_required(db.session, "addresses") is False

    changed = omnitron_sandbox.mutate("districts", update=7)["updated_ids"]
    check = sync.check_required(db.session, "addresses")
    assert check.required is True
    assert check.reason == "7 districts changed in Omnitron since the last copy."

    job = run("addresses")
    assert (job.created, job.updated, job.failed) == (0, 7, 0)
    assert job.unchanged == job.processed - 7
    flipped = db.session.scalars(select(AddressNode).where(AddressNode.level == "district",
                                                          AddressNode.omnitron_id.in_(changed)))
    with omnitron_sandbox.client() as client:
        for node in flipped:
            remote = client.get(f"/api/v1/districts/{node.omnitron_id}/")
            assert node.is_active == remote["is_active"]
            assert node.remote_modified_at == remote["modified_date"]
    assert sync.is_required(db.session, "addresses") is False

    omnitron_sandbox.mutate("channels", add=2, ids=[1], changes={"name": "Web Sitesi (yeni)"})
    check = sync.check_required(db.session, "channels")
    assert check.required is True and check.reason == "Omnitron has 10 channels; the portal has 8."
    job = run("channels")
    assert (job.created, job.updated, job.unchanged) == (2, 1, 7)
    assert db.session.scalar(select(Channel.name).where(Channel.omnitron_id == 1)) == "Web Sitesi (yeni)"


def test_demo_stores_are_matched_by_erp_code_so_their_staff_keep_them(credentials, omnitron_sandbox, make):
    stores = seed_stores(db.session)
    kadikoy = stores["IST-KDK"]
    staff = make.user("kadikoy", stores=[kadikoy])
    package = make.package(store=kadikoy)
    local_only = make.store(code="LOCAL-ONLY", name="Pop-up store")
    before_ids = {code: store.id for code, store in stores.items()}

    job = run("stock_locations")

    remote = remote_counts(omnitron_sandbox)["stock_locations"]
    assert job.status == SyncJob.DONE
    assert (job.created, job.updated, job.failed) == (remote - len(DEMO_STORES), len(DEMO_STORES), 0)
    rows = {s.erp_code: s for s in db.session.scalars(select(StockLocation))}
    assert len(rows) == remote + 1  # Omnitron's stores and the portal's own pop-up store
    for code, store_id in before_ids.items():
        assert rows[code].id == store_id and rows[code].omnitron_id is not None
    assert rows["IST-KDK"].city == "İstanbul"
    assert str(rows["IST-KDK"].latitude) == "40.990200"
    assert rows["WH-CENTRAL"].kind == "warehouse"
    assert rows["LOCAL-ONLY"].omnitron_id is None and rows["LOCAL-ONLY"].id == local_only.id
    db.session.refresh(staff)
    assert [s.erp_code for s in staff.stock_locations] == ["IST-KDK"]
    assert db.session.get(type(package), package.id).stock_location_id == kadikoy.id
    assert sync.is_required(db.session, "stock_locations") is False

    again = run("stock_locations")
    assert (again.created, again.updated, again.unchanged) == (0, 0, remote)


def test_a_store_whose_erp_code_belongs_to_another_fails_alone(credentials, omnitron_sandbox):
    run("stock_locations")
    omnitron_sandbox.mutate("stock_locations", ids=[7], changes={"erp_code": "IST-KDK"})
    omnitron_sandbox.mutate("stock_locations", ids=[8], changes={"name": ""})

    job = run("stock_locations")

    assert job.status == SyncJob.DONE
    assert (job.failed, job.updated) == (2, 0)
    assert "Stock locations id 7: erp_code IST-KDK is already used by the store 'Kadıköy Store' (Omnitron id 1)." \
        in job.error
    assert "Stock locations id 8: name is empty." in job.error
    assert db.session.scalar(select(StockLocation.erp_code).where(StockLocation.omnitron_id == 7)) == "IST-CVH"
    step = wizard.status(db.session, "stock_locations")
    assert step.state == SetupStep.NEEDS_ATTENTION
    assert "2 failed" in step.record.note and "Fix these in Omnitron" in step.record.note


def test_bad_address_records_fail_alone_and_their_children_with_them(credentials, omnitron_sandbox):
    omnitron_sandbox.mutate("townships", ids=[3], changes={"name": "   "})
    omnitron_sandbox.mutate("districts", ids=[11], changes={"is_active": "yes"})

    job = run("addresses")

    assert job.status == SyncJob.DONE
    districts_of_township_3 = db.session.scalar(select(func.count()).select_from(AddressNode).where(
        AddressNode.level == "district", AddressNode.parent_omnitron_id == 3))
    assert districts_of_township_3 == 0
    assert job.failed >= 2 and job.created + job.failed == job.processed
    assert "Townships id 3: name is empty." in job.error
    assert "its township 3 is not known" in job.error
    assert address_counts()["district"] == remote_counts(omnitron_sandbox)["districts"] - (job.failed - 1)


def test_omnitron_failing_midway_keeps_the_pages_copied_and_the_next_run_carries_on(credentials, omnitron_sandbox,
                                                                                    make):
    admin = make.user("ayse", role="admin")
    remote = remote_counts(omnitron_sandbox)
    omnitron_sandbox.add_fault("/api/v1/districts/", page=3, status=500, times=None)

    failed = run("addresses", admin.id)

    assert failed.status == SyncJob.FAILED
    assert failed.error.startswith("Copying stopped at districts page 3 of 6. Omnitron answered 500 to GET "
                                   "/api/v1/districts/")
    assert "gave up after 4 attempts" in failed.error
    assert "Pages already copied are kept: run the copy again to carry on from there." in failed.error
    assert address_counts()["district"] == 2 * PAGE_SIZE
    assert failed.cursor["resource"] == "district" and failed.cursor["page"] == 2
    parents = remote["countries"] + remote["cities"] + remote["townships"]
    assert failed.processed == failed.created == parents + 2 * PAGE_SIZE
    step = wizard.status(db.session, "addresses")
    assert step.state == SetupStep.NEEDS_ATTENTION
    assert step.record.note.startswith(f"Copy job #{failed.id} stopped: Copying stopped at districts page 3 of 6.")

    omnitron_sandbox._control("DELETE", "faults")
    resumed = run("addresses", admin.id)

    assert resumed.id != failed.id and resumed.cursor["resumed_from"] == failed.id
    assert resumed.status == SyncJob.DONE
    total = parents + remote["districts"]
    assert (resumed.processed, resumed.created, resumed.updated, resumed.unchanged, resumed.total) == (
        total, total, 0, 0, total)
    assert address_counts()["district"] == remote["districts"]
    asked = [r["query"] for r in omnitron_sandbox.requests() if r["path"] == "/api/v1/districts/"]
    # The second run asked for the count, then districts pages 3 to 6 only.
    assert "page=1&limit=500" not in asked[-5:] and "page=3&limit=500" in asked[-4]
    assert wizard.status(db.session, "addresses").state == SetupStep.DONE


def test_unreachable_omnitron_fails_the_job_with_a_readable_message(credentials, app):
    app.config["OMNITRON_URL"] = "http://127.0.0.1:9"
    job = run("channels")
    assert job.status == SyncJob.FAILED
    assert job.error.startswith("Copying stopped while counting the records. Omnitron at http://127.0.0.1:9 "
                                "cannot be reached (connection refused).")
    assert "Run the copy again when Omnitron answers." in job.error
    assert wizard.status(db.session, "channels").state == SetupStep.NEEDS_ATTENTION


def test_without_credentials_nothing_starts(app):
    with pytest.raises(ValidationFailed, match="Save the Omnitron username and password in step 7"):
        sync.start_job(db.session, "channels", user_id=None)
    assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 0
    with pytest.raises(ValidationFailed, match="Unknown sync kind"):
        sync.start_job(db.session, "products", user_id=None)


def test_a_second_job_of_the_same_kind_is_refused_while_the_first_is_alive(credentials, app):
    first = sync.start_job(db.session, "channels", user_id=None)
    with pytest.raises(sync.SyncAlreadyRunning, match=f"already running \\(job #{first.id}"):
        sync.start_job(db.session, "channels", user_id=None)
    other_kind = sync.start_job(db.session, "addresses", user_id=None)
    assert other_kind.status == SyncJob.QUEUED
    assert db.session.scalar(select(func.count()).select_from(SyncJob).where(SyncJob.kind == "channels")) == 1


def test_a_job_whose_worker_went_silent_is_carried_on_and_the_old_run_stops(credentials, omnitron_sandbox):
    # A worker copies the parents' lists and the first districts page, then dies: the job stays "running"
    # with the cursor of its last page and a heartbeat that gets older (here: 3 minutes).
    omnitron_sandbox.add_fault("/api/v1/districts/", page=2, status=500, times=None)
    first = run("addresses")
    omnitron_sandbox._control("DELETE", "faults")
    old_token = first.task_id
    db.session.execute(update(SyncJob).where(SyncJob.id == first.id).values(
        status=SyncJob.RUNNING, error="", finished_at=None, heartbeat_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    before = address_counts()
    assert before["district"] == PAGE_SIZE

    second = sync.start_job(db.session, "addresses", user_id=None)

    db.session.refresh(first)
    assert first.status == SyncJob.FAILED
    assert first.error == f"Its worker stopped (no progress for over 2 minutes); carried on as job #{second.id}."
    assert second.cursor["resumed_from"] == first.id
    assert (second.cursor["resource"], second.cursor["page"]) == ("district", 1)
    # The old run wakes up: its claim is gone, so it stops without writing anything.
    assert sync.sync_kind(db.session, first.id, token=old_token).status == SyncJob.FAILED
    assert address_counts() == before
    done = sync.sync_kind(db.session, second.id, token=second.task_id)
    assert done.status == SyncJob.DONE
    remote = remote_counts(omnitron_sandbox)
    assert address_counts()["district"] == remote["districts"]
    assert done.created == done.processed == done.total == sum(before.values()) - PAGE_SIZE + remote["districts"]


def test_execute_runs_the_task_on_the_queue(credentials, immediate_queue, omnitron_sandbox, make):
    admin = make.user("ayse", role="admin")
    job = sync.execute(db.session, "channels", user_id=admin.id)
    assert job.status == SyncJob.DONE
    assert job.started_by_id == admin.id
    assert db.session.scalar(select(func.count()).select_from(Channel)) == remote_counts(omnitron_sandbox)["channels"]
    assert sync.job_json(job, "channels")["progress"] == 100


def test_a_failing_task_on_the_queue_marks_the_job_failed(credentials, immediate_queue, omnitron_sandbox):
    omnitron_sandbox.add_fault("/api/v1/stock_locations/", status=503, times=None)
    job = sync.execute(db.session, "stock_locations", user_id=None)
    assert job.status == SyncJob.FAILED
    assert "Omnitron answered 503 to GET /api/v1/stock_locations/" in job.error
    assert huey.immediate is True


def test_two_admins_pressing_copy_at_the_same_moment_start_one_job(credentials, app):
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def admin_presses_copy(i: int) -> None:
        """One admin's request, in its own app context and database session."""
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                outcomes[i] = sync.start_job(db.session, "addresses", user_id=None).id
            except Exception as exc:  # the test looks at both outcomes
                outcomes[i] = exc
            finally:
                db.session.remove()

    db.session.commit()
    threads = [threading.Thread(target=admin_presses_copy, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    started = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, sync.SyncAlreadyRunning)]
    assert len(started) == 1 and len(refused) == 1, outcomes
    assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 1


def test_seed_demo_saves_the_sandbox_login_only_when_none_is_stored(app):
    seed_omnitron_login(db.session)
    assert sync.make_client(db.session).username == USERNAME
    settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": "brand.oms", "password": "brand-secret-1"}}, user_id=None)
    seed_omnitron_login(db.session)
    client = sync.make_client(db.session)
    assert (client.username, client._password) == ("brand.oms", "brand-secret-1")
