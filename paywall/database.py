"""Engine set-up that differs by database.

SQLite (the embedded demo database, and one of the two test databases) gets WAL, a busy
timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction: SQLite has no row locks and
ignores ``SELECT ... FOR UPDATE``, so taking the write lock when the transaction starts is what
makes the device cap hold when logins race. Writers are serialised; that is acceptable for the
demo. PostgreSQL uses row locks instead (see ``paywall.devices.services``).
https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.engine import Engine

from paywall.extensions import db

#: The PostgreSQL advisory lock ``flask db upgrade`` holds (migrations/env.py), so two
#: deploys upgrading at once run one after the other instead of racing on the DDL.
MIGRATION_LOCK_KEY = 0x70617977616C6C  # "paywall"


def configure_engine(engine: Engine, config: Mapping[str, Any] | None = None) -> None:
    """Install per-dialect connection hooks on ``engine``."""
    if engine.dialect.name == "postgresql":
        _postgresql_timeouts(engine, config if config is not None else current_app.config)
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
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # each statement commits on its own (the driver's isolation_level is None)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def init_app(app: Flask) -> None:
    """Install the hooks on the app's engine."""
    with app.app_context():
        configure_engine(db.engine)


def _postgresql_timeouts(engine: Engine, config: Mapping[str, Any]) -> None:
    """Every connection gives up on a statement or a lock wait after a few seconds, so one
    held ``LOCK TABLE`` or runaway query answers 503 instead of stalling every worker."""
    statement_ms = int(float(config.get("DATABASE_STATEMENT_TIMEOUT", 5)) * 1000)
    lock_ms = int(float(config.get("DATABASE_LOCK_TIMEOUT", 3)) * 1000)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {statement_ms}")
            cursor.execute(f"SET lock_timeout = {lock_ms}")
        dbapi_connection.commit()


#: SQLSTATEs of a statement that gave up: lock_not_available, query_canceled.
TIMEOUT_SQLSTATES = ("55P03", "57014")


def is_timeout(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in TIMEOUT_SQLSTATES
