"""WSGI entry point: `flask --app wsgi ...` and `gunicorn wsgi:app`."""
from portal import create_app

app = create_app()
