"""WSGI entry point: `flask --app wsgi ...` and `gunicorn wsgi:app`."""
import gc

from portal import create_app

app = create_app()
# Everything built at start-up lives as long as the process: keep it out of the collector's full passes,
# which otherwise walk ~140,000 objects and stall one request in every few dozen by ~100 ms.
gc.freeze()
