"""The benchmark's own PostgreSQL databases: create, migrate, fill with fixtures, seed at scale,
and EXPLAIN ANALYZE the service's hot queries."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.procs import BIN, ROOT

SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
PREFIX = "paywall_bench"
PASSWORD = "correct horse battery staple"  # noqa: S105 - every fixture account's password
SCALE_TABLES = ("accounts", "device_sessions", "stripe_events")


def url_for(name: str) -> str:
    if not name.startswith(PREFIX):
        raise ValueError(
            f"refusing to touch database {name!r}: benchmark databases start with "
            f"{PREFIX!r} (never the test suite's 'test')"
        )
    parts = urlsplit(SERVER_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _admin() -> psycopg.Connection[Any]:
    parts = urlsplit(SERVER_URL)
    return psycopg.connect(
        urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, "")), autocommit=True
    )


def pg_version() -> str:
    with _admin() as conn:
        row = conn.execute("SHOW server_version").fetchone()
        settings = conn.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN "
            "('shared_buffers', 'max_connections', 'synchronous_commit')"
        ).fetchall()
    extra = ", ".join(f"{n}={_setting(s, u)}" for n, s, u in settings)
    return f"{row[0] if row else '?'} ({extra})"


def _setting(value: str, unit: str | None) -> str:
    if unit == "8kB":
        return f"{int(value) * 8 // 1024}MB"
    return value + (unit or "")


def backend_pids(name: str) -> set[int]:
    """PostgreSQL backends connected to database ``name`` (the service's pool)."""
    with _admin() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchall()
    return {int(r[0]) for r in rows}


def recreate(name: str) -> str:
    url = url_for(name)
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def drop(name: str) -> None:
    url_for(name)  # the name guard
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flask_cli(env: dict[str, str], *args: str) -> str:
    """``flask --app wsgi <args>`` with the service's environment (as ``make run`` does)."""
    proc = subprocess.run(  # noqa: S603
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url) as conn:
        yield conn


def new_id() -> str:
    return uuid.uuid4().hex


def digest(raw: str) -> str:
    import hashlib

    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class Fixtures:
    """Rows the benchmarks use, inserted directly (COPY)."""

    # Token refresh: one active device session per account; half the accounts are premium.
    session_tokens: list[str] = field(default_factory=list)
    session_accounts: list[str] = field(default_factory=list)
    # Login: accounts without sessions, all with PASSWORD.
    login_emails: list[str] = field(default_factory=list)
    # Webhooks: readers who go through checkout (they get an active session too).
    billing_tokens: list[str] = field(default_factory=list)
    password_hash: str = ""


def seed_fixtures(
    url: str,
    *,
    readers: int,
    logins: int,
    billing_readers: int,
    password_hash: str,
    premium_price_id: str | None,
    tag: str,
) -> Fixtures:
    now = datetime.now(UTC)
    fx = Fixtures(password_hash=password_hash)
    accounts: list[tuple[Any, ...]] = []
    sessions: list[tuple[Any, ...]] = []
    customers: list[tuple[Any, ...]] = []
    subs: list[tuple[Any, ...]] = []

    def account(email: str) -> str:
        aid = new_id()
        accounts.append((aid, email, password_hash, now, now - timedelta(days=30), now))
        return aid

    def session(aid: str) -> str:
        raw = secrets.token_urlsafe(32)
        sessions.append(
            (
                new_id(),
                aid,
                digest(raw),
                "Bench device",
                "bench/1.0",
                now,
                now,
                now + timedelta(days=365),
            )
        )
        return raw

    for i in range(readers):
        aid = account(f"reader{i}.{tag}@bench.example.com")
        fx.session_accounts.append(aid)
        fx.session_tokens.append(session(aid))
        if premium_price_id and i % 2 == 0:
            cus = f"cus_bench_{tag}_{i}"
            customers.append((aid, cus, now))
            subs.append(
                (
                    f"sub_bench_{tag}_{i}",
                    aid,
                    cus,
                    premium_price_id,
                    "active",
                    now + timedelta(days=30),
                    False,
                    now,
                    now,
                )
            )
    for i in range(logins):
        email = f"login{i}.{tag}@bench.example.com"
        account(email)
        fx.login_emails.append(email)
    for i in range(billing_readers):
        aid = account(f"subscriber{i}.{tag}@bench.example.com")
        fx.billing_tokens.append(session(aid))

    with connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY accounts (id, email, password_hash, email_verified_at, created_at,"
            " password_changed_at) FROM STDIN"
        ) as copy:
            for row in accounts:
                copy.write_row(row)
        with cur.copy(
            "COPY device_sessions (id, account_id, token_digest, device_name,"
            " user_agent, created_at, last_seen_at, expires_at) FROM STDIN"
        ) as copy:
            for row in sessions:
                copy.write_row(row)
        with cur.copy(
            "COPY billing_customers (account_id, stripe_customer_id, created_at) FROM STDIN"
        ) as copy:
            for row in customers:
                copy.write_row(row)
        with cur.copy(
            "COPY billing_subscriptions (id, account_id, stripe_customer_id, price_id,"
            " status, current_period_end, cancel_at_period_end, created_at, synced_at)"
            " FROM STDIN"
        ) as copy:
            for row in subs:
                copy.write_row(row)
        conn.commit()
        cur.execute("ANALYZE")
    return fx


def premium_price_id(url: str) -> str | None:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT price_id FROM plans WHERE lookup_key = 'premium_monthly'"
        ).fetchone()
    return row[0] if row else None


# -- seeding at scale --------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaleSize:
    accounts: int
    sessions_per_account: int
    events: int

    @property
    def sessions(self) -> int:
        return self.accounts * self.sessions_per_account


def _constraints(cur: psycopg.Cursor[Any]) -> list[tuple[str, str, str, str]]:
    """(table, name, type, definition) of every constraint on or referencing the tables."""
    cur.execute(
        "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)"
        " FROM pg_constraint WHERE contype IN ('p', 'u', 'f')"
        " AND (conrelid::regclass::text = ANY(%(t)s) OR confrelid::regclass::text = ANY(%(t)s))",
        {"t": list(SCALE_TABLES)},
    )
    return list(cur.fetchall())


def _plain_indexes(cur: psycopg.Cursor[Any]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX ...) of indexes on the tables that back no constraint."""
    cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid::regclass::text = ANY(%(t)s)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        {"t": list(SCALE_TABLES)},
    )
    return list(cur.fetchall())


def seed_scale(
    url: str, size: ScaleSize, password_hash: str, event_payload_template: str
) -> dict[str, float]:
    """Bulk-insert accounts, device sessions (most of them over) and stored webhook events
    server-side (INSERT ... SELECT generate_series), with the tables' indexes and constraints
    dropped during the load and rebuilt after it exactly as the migrations made them.
    Returns seconds per step.

    Seeded rows are reproducible: account i is md5('scale-account-i'), its email
    reader<i>@scale.example.com; session j's raw value is 'scale-session-j' (j % 5 == 1 is
    active); event k is 'evt_' || md5('scale-event-k')."""
    timings: dict[str, float] = {}
    spa = size.sessions_per_account
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        constraints = _constraints(cur)
        indexes = _plain_indexes(cur)
        t = time.perf_counter()
        for table, name, _kind, _ in sorted(constraints, key=lambda c: c[2] != "f"):
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')
        for name, _ in indexes:
            cur.execute(f"DROP INDEX IF EXISTS {name}")
        conn.commit()
        timings["drop indexes"] = time.perf_counter() - t

        t = time.perf_counter()
        cur.execute(
            "INSERT INTO accounts (id, email, password_hash, email_verified_at, created_at,"
            " password_changed_at)"
            " SELECT md5('scale-account-' || i), 'reader' || i || '@scale.example.com', %(h)s,"
            "   now() - interval '300 days', now() - (i || ' seconds')::interval,"
            "   now() - interval '300 days'"
            " FROM generate_series(1, %(n)s) AS i",
            {"h": password_hash, "n": size.accounts},
        )
        conn.commit()
        timings[f"{size.accounts:,} accounts"] = time.perf_counter() - t

        t = time.perf_counter()
        # j % spa: 1 active; 2, 3 past expires_at; 4 idle too long; 0 signed out or evicted.
        cur.execute(
            "INSERT INTO device_sessions (id, account_id, token_digest, device_name, user_agent,"
            " created_at, last_seen_at, expires_at, ended_at, end_reason)"
            " SELECT md5('scale-session-' || j), md5('scale-account-' || ((j - 1) / %(spa)s + 1)),"
            "   encode(sha256(convert_to('scale-session-' || j, 'UTF8')), 'hex'),"
            "   'Chrome on Linux', 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0',"
            "   now() - interval '400 days',"
            "   CASE j %% %(spa)s WHEN 1 THEN now() - interval '1 day'"
            "                    WHEN 4 THEN now() - interval '90 days'"
            "                    ELSE now() - interval '200 days' END,"
            "   CASE WHEN j %% %(spa)s IN (2, 3) THEN now() - interval '35 days'"
            "        ELSE now() + interval '200 days' END,"
            "   CASE WHEN j %% %(spa)s = 0 THEN now() - interval '100 days' END,"
            "   CASE WHEN j %% %(spa)s = 0 THEN"
            "     (CASE WHEN j %% 2 = 0 THEN 'signed_out' ELSE 'evicted' END) END"
            " FROM generate_series(1, %(n)s) AS j",
            {"spa": spa, "n": size.sessions},
        )
        conn.commit()
        timings[f"{size.sessions:,} device sessions"] = time.perf_counter() - t

        t = time.perf_counter()
        cur.execute(
            "INSERT INTO stripe_events (id, type, created, livemode, payload, status,"
            " stripe_customer_id, error, attempts, received_at, processed_at)"
            " SELECT 'evt_' || md5('scale-event-' || k),"
            "   (ARRAY['customer.subscription.updated', 'invoice.paid',"
            "          'invoice.payment_succeeded',"
            "          'customer.subscription.created', 'checkout.session.completed',"
            "          'payment_intent.succeeded'])[k %% 6 + 1],"
            "   1700000000 + k, false,"
            "   replace(%(tpl)s, '__EVENT_ID__', 'evt_' || md5('scale-event-' || k)),"
            "   CASE WHEN k %% 100 = 0 THEN 'orphaned' WHEN k %% 6 = 5 THEN 'ignored'"
            "        ELSE 'processed' END,"
            "   CASE WHEN k %% 100 = 0 THEN 'cus_scale_' || k END, NULL, 1,"
            "   now() - (k || ' seconds')::interval, now() - (k || ' seconds')::interval"
            " FROM generate_series(1, %(n)s) AS k",
            {"tpl": event_payload_template, "n": size.events},
        )
        conn.commit()
        timings[f"{size.events:,} webhook events"] = time.perf_counter() - t

        t = time.perf_counter()
        for _name, ddl in indexes:
            cur.execute(ddl)
        for table, name, _kind, definition in sorted(constraints, key=lambda c: c[2] == "f"):
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        conn.commit()
        timings["rebuild indexes and constraints"] = time.perf_counter() - t

    t = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in SCALE_TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    timings["VACUUM ANALYZE"] = time.perf_counter() - t
    return timings


def table_sizes(url: str, tables: Sequence[str] = SCALE_TABLES) -> list[tuple[str, int, str]]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid))"
            " FROM pg_stat_user_tables WHERE relname = ANY(%s) ORDER BY relname",
            (list(tables),),
        ).fetchall()
    exact = []
    with connect(url) as conn:
        for name, _est, size in rows:
            count = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            exact.append((name, int(count[0]) if count else 0, size))
    return exact


def explain(url: str, statement: str, params: Any, runs: int = 3) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement as the service sent it; the last of ``runs``
    executions (warm cache), rolled back."""
    text = ""
    with psycopg.connect(url) as conn:
        for _ in range(runs):
            rows = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement,
                params,  # type: ignore[arg-type]
            ).fetchall()
            conn.rollback()
            text = "\n".join(r[0] for r in rows)
    return text


def sizes_summary(rows: Sequence[tuple[str, int, str]]) -> str:
    return ", ".join(f"{name}: {count:,} rows ({size})" for name, count, size in rows)
