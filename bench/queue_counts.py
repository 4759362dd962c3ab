"""Benchmark the work queue's tab counts against a database seeded by bench/seed.py, and write the figures as markdown.

Usage (from the repository root; seed first with bench/seed.py, or `BENCH_DATABASES=sqlite bench/run-all`):

    DATABASE_URL=sqlite:////tmp/portal-bench/bench-1000000.sqlite .venv/bin/python bench/queue_counts.py
    DATABASE_URL=postgresql+psycopg://portal@127.0.0.1:5433/bench .venv/bin/python bench/queue_counts.py

It first gives the outbox an SMS history (fill_outbox, once). It then measures, each with many iterations
after a warm-up, p50 and p95 in milliseconds of
`portal.packages.work_queue.queue_counts()` (the To pack, Ready for pickup and Problems counts) for three scopes:
the busiest store (bench-staff-1), a member of two stores (bench-floater) and every store (the admin); and the
server time of the staff home's refresh (GET /packages as an htmx fragment: the tabs with their counts and the
To pack cards) for bench-staff-1. Every statement queue_counts() issues is EXPLAINed with the same checks as
bench/run.py (PostgreSQL: EXPLAIN (ANALYZE, BUFFERS); SQLite: EXPLAIN QUERY PLAN plus VM steps): a plan that
scans the packages table fails. The target is p95 < 50 ms for the counts at 1,000,000 packages.
The markdown goes to bench/results/queue_counts-<database>.md (gitignored) for the lead to paste.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, select, text  # noqa: E402

from bench.run import FLOATER_USER, STAFF_PASSWORD, STAFF_USER, Bench, timed  # noqa: E402

COUNT_TARGET_MS = 50.0
OUTBOX_BATCH = 20_000


def fill_outbox(bench: Bench) -> int:
    """Give the outbox the SMS history a live portal has (bench/seed.py writes none), so that the "SMS not sent"
    count is planned against a full table: a sent SMS for every ready package and for every third shipped or
    delivered one, then a newer failed SMS for every 20th ready package and a dead one for every 50th. Runs once
    (it does nothing when SMS rows exist) and outside the timing. Returns the number of rows written."""
    import uuid

    from portal.db_types import utcnow
    from portal.outbox.models import OutboxMessage
    from portal.packages.models import Package
    from portal.packages.states import State

    db = bench.db
    with bench.app.app_context():
        if db.session.scalar(select(func.count()).select_from(
                select(OutboxMessage.id).where(OutboxMessage.kind == "sms").limit(1).subquery())):
            return 0
        now = utcnow()
        ready = list(db.session.scalars(select(Package.id).where(Package.state == State.READY_FOR_CUSTOMER_PICKUP)))
        done = list(db.session.scalars(select(Package.id).where(
            Package.state.in_((State.SHIPPED, State.DELIVERED)), Package.id % 3 == 0)))
        rows = [(package_id, OutboxMessage.SENT) for package_id in ready + done]
        rows += [(package_id, OutboxMessage.FAILED) for package_id in ready[::20]]
        rows += [(package_id, OutboxMessage.DEAD) for package_id in ready[::50]]
        table = OutboxMessage.__table__
        for start in range(0, len(rows), OUTBOX_BATCH):
            db.session.execute(table.insert(), [
                {"uuid": str(uuid.uuid4()), "kind": "sms", "event_type": "", "package_id": package_id,
                 "event_uuid": "", "payload": {"to": "+905550000000"}, "status": status, "attempts": 1,
                 "last_error": "", "provider_id": "", "next_attempt_at": now, "created_at": now}
                for package_id, status in rows[start:start + OUTBOX_BATCH]])
        db.session.commit()
        if bench.postgres:
            db.session.execute(text("ANALYZE outbox_messages"))
            db.session.commit()
        else:
            db.session.execute(text("ANALYZE"))
        db.session.remove()
        return len(rows)


def _statements(bench: Bench, fn) -> list[tuple[str, object]]:
    """The SQL statements (with their parameters) that one call of fn issues."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        """Keep every SELECT (the login and session lookups are not part of the counts)."""
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))
    event.listen(bench.engine, "before_cursor_execute", record)
    try:
        fn()
    finally:
        event.remove(bench.engine, "before_cursor_execute", record)
    return seen


def main(argv=None) -> int:
    """Measure, check the plans, print and write the markdown; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", help="markdown file (default bench/results/queue_counts-<database>.md)")
    args = parser.parse_args(argv)

    from portal.accounts.models import User
    from portal.packages import work_queue
    from portal.packages.models import Package

    bench = Bench(args.iterations, args.warmup)
    db = bench.db
    written = fill_outbox(bench)
    if written:
        print(f"Wrote {written:,} SMS rows to the outbox (once; see fill_outbox).")
    with bench.app.app_context():
        staff = db.session.scalar(select(User).where(User.username == STAFF_USER))
        floater = db.session.scalar(select(User).where(User.username == FLOATER_USER))
        if staff is None or floater is None:
            raise SystemExit("The benchmark users are missing: run bench/seed.py first.")
        scopes = [(f"busiest store ({STAFF_USER})", staff.store_ids), (f"2 stores ({FLOATER_USER})", floater.store_ids),
                  ("every store (admin)", None)]
        total = db.session.scalar(select(func.count()).select_from(Package)) or 0
        db.session.remove()

    rows, plans, failed = [], [], False
    for name, store_ids in scopes:
        with bench.app.app_context():
            counts = work_queue.queue_counts(db.session, store_ids)
            timing = timed(lambda _i, ids=store_ids: work_queue.queue_counts(db.session, ids),
                           args.iterations, args.warmup)
            statements = _statements(bench, lambda ids=store_ids: work_queue.queue_counts(db.session, ids))
            db.session.remove()
        ok = timing.p95 < COUNT_TARGET_MS
        failed |= not ok
        rows.append((f"queue_counts(), {name}", timing, f"{counts.pack}/{counts.pickup}/{counts.problems}", ok))
        for statement, params in statements:
            plan = bench.explain(f"counts, {name}", statement, params)
            plans.append(plan)
            failed |= not plan.ok

    client = bench.login(STAFF_USER, STAFF_PASSWORD)
    headers = {"HX-Request": "true"}
    assert client.get("/packages", headers=headers).status_code == 200
    timing = timed(lambda _i: client.get("/packages", headers=headers), args.iterations, args.warmup)
    rows.append((f"GET /packages (htmx refresh: tabs + To pack cards), {STAFF_USER}", timing, "", True))

    lines = [f"## Work queue counts (bench/queue_counts.py, {bench.dialect}, {total:,} packages)", "",
             f"{args.iterations} iterations after {args.warmup} warm-up ones; times in ms. Counts read "
             "To pack / Ready for pickup / Problems.", "",
             "| Measurement | p50 | p95 | CPU p95 | counts | p95 < 50 ms |", "|---|---:|---:|---:|---|---|"]
    for name, timing, counts_text, ok in rows:
        verdict = ("PASS" if ok else "FAIL") if counts_text else "-"
        lines.append(f"| {name} | {timing.p50:.2f} | {timing.p95:.2f} | {timing.cpu_p95:.2f} | {counts_text} "
                     f"| {verdict} |")
    lines += ["", "| Statement of | plan | work | check |", "|---|---|---|---|"]
    for plan in plans:
        lines.append(f"| {plan.scenario} | {' / '.join(ln.strip() for ln in plan.lines[:4])} | {plan.work} "
                     f"| {'PASS' if plan.ok else 'FAIL: ' + plan.why} |")
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"queue_counts-{bench.dialect}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown, encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
