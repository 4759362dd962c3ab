"""What mypy sees as `portal.extensions.db`: never imported at run time.

Flask-SQLAlchemy's `db.session` is a scoped_session proxy and `db.Model` a class built at run time, which mypy
cannot use as a base class (it reports `Name "db.Model" is not defined`). portal/extensions.py imports this module
as `db` under TYPE_CHECKING only, so that `class Thing(db.Model)` is a typed SQLAlchemy 2 model, and `db.session`
is a plain `sqlalchemy.orm.Session` that the domain functions accept. Declare here any other `db.` attribute the
code starts to use. (Flask-SQLAlchemy's own annotations say scoped_session, which the domain functions' `Session`
parameters refuse; the proxy forwards every Session method, so for the type checker it is one.)
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import JSON as JSON  # re-exported: db.JSON
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import DeclarativeBase, Session

session: Session
engine: Engine
metadata: MetaData


class Model(DeclarativeBase):
    """Stands for Flask-SQLAlchemy's model class built on portal.extensions.Base (which adds nothing of its own).

    Declared here rather than as a subclass of Base so that this module imports nothing from the portal.
    """

    __fsa__: Any


def init_app(app: Flask) -> None:
    """Binds the extension to the app."""
