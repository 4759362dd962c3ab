"""Background runs: one lifecycle (queue, claim, progress, finish, fail, stale takeover) for every kind.

Adding a kind of background work (shipment tracking, an export, ...):

1. a model `class ExportRun(RunMixin, db.Model)` with its own id and counters (and an Alembic migration);
2. a step function that claims the run, works in slices from run.cursor, and saves each slice:

       def step(session, run_id, token):
           if not runs.claim(session, ExportRun, run_id, token):
               return                        # another worker has it, or it ended
           run = session.get(ExportRun, run_id)
           ...                               # a slice of work, from run.cursor on
           runs.save_progress(session, ExportRun, run_id, token, cursor=..., progress={"done": n, "total": m})
           runs.finish(session, ExportRun, run_id, token)
       # on an error: runs.fail(session, "export", run_id, token, _("What went wrong and what to do."))

3. `runs.register(runs.RunKind("export", ExportRun, step=step))` in the kind's service module (imported
   by portal/worker.py), and to start one: record ExportRun(task_id=runs.new_token()), commit, then
   `runs.queue(session, "export", run)`;
4. its page shows the run with the macros of templates/runs/_status.html and runs.panel_state(run).

portal/orders/service.py (kind "order_import") is a complete example; tests/test_runs.py has a ten-line one.
"""
