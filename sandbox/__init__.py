"""An Omnitron sandbox: a separate WSGI app with token auth, paginated JSON and failure injection.

Run it with `python -m sandbox --port 8100`; tests build it with `create_app(config)`.
"""
from sandbox.app import create_app

__all__ = ["create_app"]
