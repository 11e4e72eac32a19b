"""Engine set-up that differs by database.

SQLite (the embedded demo database, and one of the two test databases) gets WAL, a busy
timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction: SQLite has no row locks and
ignores ``SELECT ... FOR UPDATE``, so taking the write lock when the transaction starts is what
makes the device cap hold when logins race. Writers are serialised; that is acceptable for the
demo. PostgreSQL uses row locks instead (see ``paywall.devices.services``).
https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from paywall.extensions import db


def configure_engine(engine: Engine) -> None:
    """Install per-dialect connection hooks on ``engine``."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def init_app(app: Flask) -> None:
    """Install the hooks on the app's engine."""
    with app.app_context():
        configure_engine(db.engine)
