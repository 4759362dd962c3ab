"""Benchmark the hold sweep (portal.packages.hold_sweep): ready packages swept per second, and tracemalloc's peak.

Usage (from the repository root):

    .venv/bin/python bench/hold_sweep.py                          # 10,000 / 100,000 / 1,000,000 on SQLite
    .venv/bin/python bench/hold_sweep.py --sizes 10000,100000
    DATABASE_URL=postgresql+psycopg://portal@127.0.0.1:5433/bench .venv/bin/python bench/hold_sweep.py

For each size it builds a fresh database (SQLite: a new file under BENCH_DIR, default /tmp/portal-bench; another
DATABASE_URL: its tables are dropped and made again) holding that many packages, all Ready for Customer Pickup:
1 % with a hold ending within the reminder lead time, 1 % with a hold that has ended, the rest ending in a week.
A first, unreported sweep over 2,000 packages warms the process up. It then runs one sweep (a recorded run of
kind "hold_sweep" carried out by its step, slices of SWEEP_BATCH) twice:

1. under tracemalloc, for the peak of Python allocations during the sweep: it must stay flat as the table grows
   (the sweep holds one slice at a time);
2. again from the same starting point (the reminders and expiries of pass 1 undone), without tracemalloc, for
   packages/s.

Delivering the reminder SMS is the outbox worker's work, not the sweep's: the SMS rows are written (encrypted,
in the slice's transaction) but not handed to a provider here. The markdown table goes to stdout and to
bench/results/hold_sweep-<database>.md (gitignored).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, update  # noqa: E402

BATCH = 20_000


def build(db, size: int) -> None:
    """A store, and `size` ready click & collect packages with their customers, inserted in batches."""
    from portal.db_types import utcnow
    from portal.packages.models import Customer, Package
    from portal.packages.states import DeliveryType, State
    from portal.stores.models import StockLocation

    db.drop_all()
    db.create_all()
    store = StockLocation(erp_code="BENCH", name="Bench Store", city="Istanbul")
    db.session.add(store)
    db.session.commit()
    now = utcnow()
    for start in range(0, size, BATCH):
        stop = min(size, start + BATCH)
        db.session.execute(Customer.__table__.insert(), [
            {"id": n + 1, "first_name": "Ada", "last_name": f"C{n}", "phone": "+905550000000", "email": ""}
            for n in range(start, stop)])
        rows = []
        for n in range(start, stop):
            if n % 100 == 0:
                until = now + timedelta(hours=3)  # the reminder is due
            elif n % 100 == 1:
                until = now - timedelta(hours=3)  # the hold has ended
            else:
                until = now + timedelta(days=6)
            rows.append({"id": n + 1, "number": f"PK{n:09d}", "order_number": f"ORD{n:09d}",
                         "stock_location_id": store.id, "customer_id": n + 1,
                         "state": int(State.READY_FOR_CUSTOMER_PICKUP), "delivery_type": DeliveryType.IN_STORE,
                         "delivery_from_store": True, "item_count": 1, "version": 1, "created_at": now,
                         "updated_at": now, "hold_until": until})
        db.session.execute(Package.__table__.insert(), rows)
        db.session.commit()


def undo(db) -> None:
    """Put the packages back as they were before a sweep: no reminder, no expiry, no SMS, logs or runs."""
    from portal.outbox.models import OutboxMessage
    from portal.packages.models import HoldSweepRun, Package, PackageLog

    db.session.execute(update(Package).values(hold_reminder_sent_at=None, hold_expired_at=None))
    for model in (OutboxMessage, PackageLog, HoldSweepRun):
        db.session.execute(delete(model))
    db.session.commit()


def sweep(db):
    """One sweep run to its end; returns the finished run."""
    from portal.packages import hold_sweep

    run = hold_sweep.start_sweep(db.session)
    assert run.status == run.DONE, run.error
    return run


def measure(size: int, url: str | None) -> dict:
    """Build a database of `size` ready packages and time one sweep over it (see the module docstring)."""
    from portal import create_app
    from portal.extensions import db
    from portal.outbox import service as outbox
    from portal.queue import huey

    if url is None:
        folder = Path(os.environ.get("BENCH_DIR", "/tmp/portal-bench"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"hold-sweep-{size}.sqlite"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SMS_PROVIDER": "memory", "RATELIMIT_ENABLED": False})
    huey.immediate = True
    # The outbox worker delivers SMS; the sweep only writes them. Forget them instead of delivering inline.
    outbox.deliver_after_commit = lambda session, message_ids=None: outbox.written_ids(session) and None
    with app.app_context():
        started = time.perf_counter()
        build(db, size)
        built = time.perf_counter() - started
        tracemalloc.start()
        run = sweep(db)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        undo(db)
        started = time.perf_counter()
        timed = sweep(db)
        seconds = time.perf_counter() - started
        assert (timed.checked, timed.reminded, timed.expired) == (run.checked, run.reminded, run.expired)
        db.session.remove()
        db.engine.dispose()
    return {"size": size, "build_s": built, "seconds": seconds, "rate": size / seconds, "peak_kib": peak / 1024,
            "reminded": timed.reminded, "expired": timed.expired, "database": url.split(":", 1)[0]}


def main() -> int:
    """Measure each size and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or None
    measure(2_000, url)  # warm-up, not reported: the first sweep in a process fills SQLAlchemy's statement caches
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        result = measure(size, url)
        results.append(result)
        print(f"{size:>9,} packages: {result['rate']:,.0f} packages/s ({result['seconds']:.1f} s), "
              f"peak {result['peak_kib']:,.0f} KiB, {result['reminded']} reminded, {result['expired']} expired "
              f"(built in {result['build_s']:.0f} s)", flush=True)
    database = results[0]["database"] if results else "none"
    lines = [f"Hold sweep ({database}; 1 % reminded, 1 % expired, slices of 500)", "",
             "| ready packages | sweep time | packages/s | tracemalloc peak | reminded | expired |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['size']:,} | {r['seconds']:.1f} s | {r['rate']:,.0f} | {r['peak_kib']:,.0f} KiB | "
              f"{r['reminded']:,} | {r['expired']:,} |" for r in results]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"hold_sweep-{database}.md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
