"""PostgreSQL: a held lock answers a clean 503 instead of stalling the service, and
``flask db upgrade`` run twice at once (two deploys) is safe: the second waits on an advisory
lock, then finds nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from paywall.database import MIGRATION_LOCK_KEY
from paywall.extensions import db
from tests.conftest import PG_URL, AuthActions

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PAYWALL_TEST_DATABASE_URL")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    return database_url


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"DATABASE_LOCK_TIMEOUT": 1, "DATABASE_STATEMENT_TIMEOUT": 2}


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_connections_carry_the_timeouts(app: Flask) -> None:
    with app.app_context():
        assert db.session.scalar(sa.text("SHOW statement_timeout")) == "2s"
        assert db.session.scalar(sa.text("SHOW lock_timeout")) == "1s"


def test_a_held_table_lock_is_a_clean_503_not_a_stall(
    app: Flask, auth: AuthActions, database_url: str
) -> None:
    auth.sign_up()
    browser = auth.browser()
    locker = engine_for(database_url)
    answers: list[Any] = []
    with locker.connect() as conn:
        conn.execute(sa.text("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"))
        worker = threading.Thread(target=lambda: answers.append(browser.get("/api/v1/account")))
        worker.start()
        worker.join(60)  # a guard so a regression fails instead of hanging the suite
        stalled = worker.is_alive()
        conn.rollback()  # releases the lock (and a stalled request with it)
    worker.join()
    locker.dispose()
    assert not stalled, "the request waited for the lock instead of timing out"
    response = answers[0]
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_busy"
    assert response.headers["Retry-After"]
    assert browser.get("/api/v1/account").status_code == 200  # the lock is gone: all well


@pytest.fixture
def fresh_schema() -> Iterator[str]:
    assert PG_URL
    schema = "paywall_mig_" + uuid.uuid4().hex[:8]
    engine = engine_for(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def upgrade(url: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PAYWALL_DEMO": "true",
        "PAYWALL_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_an_upgrade_waits_for_the_migration_lock(fresh_schema: str) -> None:
    admin = engine_for(PG_URL or "")
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        proc = upgrade(fresh_schema)
        waiting = False
        while proc.poll() is None and not waiting:  # until it queues on the lock, or ends
            waiting = bool(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            )
        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
        conn.commit()
    output, _ = proc.communicate(timeout=120)
    admin.dispose()
    assert waiting, f"the upgrade never waited for the migration lock: {output}"
    assert proc.returncode == 0, output


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_upgrades_on_a_fresh_schema_both_succeed(
    fresh_schema: str, round_: int
) -> None:
    procs = [upgrade(fresh_schema), upgrade(fresh_schema)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    engine = engine_for(fresh_schema)
    with engine.connect() as conn:
        heads = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert len(heads) == 1
