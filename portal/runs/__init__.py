"""Background runs: one lifecycle (queue, claim, progress, finish, fail, stale takeover) for every kind.

A kind of run is a model using RunMixin plus one step function registered with runs.service.register;
see portal/runs/service.py for the lifecycle and portal/orders/service.py for a small example.
"""
