"""What one request costs in database round trips: the service's own code run in this process
(Flask test client, same configuration and database as the gunicorn service), with SQLAlchemy's
engine and pool events recorded. Every line is one round trip to PostgreSQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bench.report import table

if TYPE_CHECKING:
    from flask import Flask

    from bench.runner import Context, DbState

_FROM = re.compile(r"\bFROM (\w+)")
_WHERE = re.compile(r"\bWHERE (.*?)(?: ORDER BY| LIMIT| FOR UPDATE|$)")


def short(statement: str) -> str:
    s = " ".join(statement.split())
    verb = s.split(" ", 1)[0].upper()
    lock = " FOR UPDATE" if "FOR UPDATE" in s else ""
    if verb == "SELECT":
        table_ = _FROM.search(s)
        where = _WHERE.search(s)
        bind = r"%\(\w+\)s(::(?:TIMESTAMP WITH TIME ZONE|[A-Z]+))?"
        cond = re.sub(bind, "?", where.group(1)) if where else ""
        cond = re.sub(r"\b\w+\.(\w+)", r"\1", cond)
        tables = [table_.group(1) if table_ else "?"] + re.findall(r"\bJOIN (\w+)", s)
        return (f"SELECT {' JOIN '.join(tables)}{' WHERE ' + cond if cond else ''}{lock}")[:160]
    if verb == "INSERT":
        m = re.search(r"INSERT INTO (\w+)", s)
        return f"INSERT {m.group(1) if m else '?'}"
    if verb == "UPDATE":
        m = re.search(r"UPDATE (\w+) SET (.*?) WHERE", s)
        if m:
            cols = ", ".join(c.split("=")[0].strip() for c in m.group(2).split(","))
            return f"UPDATE {m.group(1)} SET {cols}"
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return re.sub(r" sa_savepoint_\d+", "", s)
    return s[:80]


def app_for(ctx: Context, state: DbState) -> Flask:
    from paywall import create_app

    key = f"app:{state.name}"
    if key not in ctx.notes:
        ctx.notes[key] = create_app(
            {
                "DATABASE_URL": state.url,
                "SECRET_KEY": ctx.secret_key,
                "ENTITLEMENT_SIGNING_KEYS": [ctx.entitlement_key],
                "VAPID_PRIVATE_KEY": ctx.vapid_key,
                "STRIPE_API_KEY": ctx.stripe_key,
                "STRIPE_WEBHOOK_SECRET": [ctx.webhook_secret],
                "STRIPE_API_BASE": ctx.standin.url,
                "SMTP_URL": f"smtp://127.0.0.1:{ctx.smtp_port}",
                "RATELIMIT_ENABLED": False,
                "DEVICE_POLICY": "evict_lru",
                "OUTBOX_SEND_AFTER_RESPONSE": False,
            }
        )
    return ctx.notes[key]  # type: ignore[no-any-return]


def trace(app: Flask, method: str, path: str, **kwargs: Any) -> tuple[int, list[str]]:
    """(status, one line per database round trip) of one request."""
    import logging

    from sqlalchemy import event

    from paywall.extensions import db

    events: list[str] = []
    with app.app_context():
        engine = db.engine
    pre_ping = bool(getattr(engine.pool, "_pre_ping", False))
    hooks = [
        (
            engine.pool,
            "checkout",
            lambda *a: events.append("pool checkout: pre-ping `SELECT 1`" if pre_ping else ""),
        ),
        # An autocommit connection (``paywall.database.autocommit_read``) fires these events
        # but sends nothing: the driver is in autocommit.
        (engine, "begin", lambda c, *a: events.append("" if _autocommit(c) else "BEGIN")),
        (engine, "commit", lambda c, *a: events.append("" if _autocommit(c) else "COMMIT")),
        (engine, "rollback", lambda c, *a: events.append("" if _autocommit(c) else "ROLLBACK")),
        (engine, "before_cursor_execute", lambda _c, _cur, stmt, *a: events.append(short(stmt))),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    level = logging.getLogger("paywall").level
    logging.getLogger("paywall").setLevel(logging.WARNING)
    try:
        resp = app.test_client().open(path, method=method, buffered=True, **kwargs)
        status = resp.status_code
        resp.close()
    finally:
        logging.getLogger("paywall").setLevel(level)
        for target, name, fn in hooks:
            event.remove(target, name, fn)
    return status, [e for e in events if e]


def _autocommit(connection: Any) -> bool:
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def section_lines(title: str, status: int, events: list[str], note: str = "") -> list[str]:
    rows = [[str(i + 1), f"`{e}`" if not e.startswith("pool") else e] for i, e in enumerate(events)]
    return [
        f"**Round trips to PostgreSQL of one {title}** (HTTP {status}; the service's own"
        " code in the harness process, Flask test client, SQLAlchemy engine and pool"
        f" events){': ' + note if note else ''}",
        "",
        *table(["#", "round trip"], rows),
        "",
    ]
