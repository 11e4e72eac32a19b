"""Engine set-up that differs by database.

SQLite (the embedded demo database, and one of the two test databases) gets WAL, a busy
timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction: SQLite has no row locks and
ignores ``SELECT ... FOR UPDATE``, so taking the write lock when the transaction starts is what
makes the device cap hold when logins race. Writers are serialised; that is acceptable for the
demo. PostgreSQL uses row locks instead (see ``paywall.devices.services``).
https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, current_app
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

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
            return  # ``autocommit_read``, the fan-out's answers: each statement commits alone
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


T = TypeVar("T")


_read_engine_lock = threading.Lock()
READ_ENGINE = "paywall.read_engine"


def read_engine() -> Engine:
    """The engine ``autocommit_read`` runs on: the app's database and engine options, but no
    ``pool_pre_ping``. The read retries once on a connection found dead, so it needs no ping
    (a ``SELECT 1`` round trip per request); every other request stays on the app's engine,
    which pings on checkout, so a database restart fails none of them."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    engine: Engine | None = app.extensions.get(READ_ENGINE)
    if engine is not None:
        return engine
    with _read_engine_lock:
        engine = app.extensions.get(READ_ENGINE)
        if engine is None:
            main = db.engine
            if main.dialect.name == "sqlite" and main.url.database in (None, "", ":memory:"):
                engine = main  # an in-memory database exists only on its own engine
            else:
                options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
                options["pool_pre_ping"] = False
                engine = create_engine(main.url, **options)
                configure_engine(engine, app.config)
            app.extensions[READ_ENGINE] = engine
    return engine


def dispose_read_engine(app: Flask) -> None:
    """Close the read engine's pooled connections (tests, and a forked worker)."""
    engine = app.extensions.pop(READ_ENGINE, None)
    if engine is not None:
        with app.app_context():
            if engine is not db.engine:
                engine.dispose()


def autocommit_read(engine: Engine, read: Callable[[Connection], T]) -> T:
    """Run a read-only ``read`` on a pooled connection in autocommit: no ``BEGIN`` and no
    ``ROLLBACK`` round trip, and psycopg keeps its prepared statements (a ``ROLLBACK``
    discards them). ``engine`` is ``read_engine()``, which does not ping on checkout: a
    connection found dead is invalidated with the pool and the read is tried once more on a
    fresh one, so a database restart costs no failed request here either."""
    for attempt in (1, 2):
        try:
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                return read(connection)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
