"""What mypy sees as `portal.extensions.db`: never imported at run time.

Flask-SQLAlchemy's `db.session` is a scoped_session proxy and `db.Model` a class built at run time, which mypy
cannot use as a base class (it reports `Name "db.Model" is not defined`). portal/extensions.py imports this module
as `db` under TYPE_CHECKING only, so that `class Thing(db.Model)` is a typed SQLAlchemy 2 model, and `db.session`
is a plain `sqlalchemy.orm.Session` that the domain functions accept. Declare here any other `db.` attribute the
code starts to use.
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import JSON as JSON  # noqa: N811 - re-exported as db.JSON
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import Session

from portal.extensions import Base

session: Session
engine: Engine
metadata: MetaData


class Model(Base):
    """The declarative base of the portal's models (Flask-SQLAlchemy adds the table name and the bind)."""

    __abstract__ = True
    __fsa__: Any


def init_app(app: Flask) -> None:
    """Binds the extension to the app."""
