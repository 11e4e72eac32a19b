"""Real Celery workers (subprocesses) on a real broker: Redis (db from PAYWALL_TEST_REDIS_URL)
next to PostgreSQL, kombu's SQLAlchemy transport on a SQLite file next to SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask

from tests.conftest import REDIS_URL, base_config, free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent.parent


class Inbox:
    """An SMTP server (aiosmtpd) the test can stop, restart, hold or make refuse addresses."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.hold = threading.Event()  # set: DATA waits until cleared
        self.refuse: set[str] = set()
        self.controller: Controller | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:  # noqa: N802,E501
        if address in self.refuse:
            return "450 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import asyncio

        while self.hold.is_set():
            await asyncio.sleep(0.05)
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def count_to(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for message in self.messages:
                counts[message["To"]] = counts.get(message["To"], 0) + 1
        return counts

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def broker_url(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("postgresql") and REDIS_URL:
        return REDIS_URL
    return f"sqla+sqlite:///{tmp_path}/broker.sqlite3"


@pytest.fixture
def mail_schedule() -> list[float]:
    """Seconds between attempts at one email; a test may parametrize it."""
    return [0.5] * 60


@pytest.fixture
def app_config(broker_url: str, inbox: Inbox, mail_schedule: list[float]) -> dict[str, Any]:
    return {
        "CELERY_TASK_ALWAYS_EAGER": False,
        "CELERY_BROKER_URL": broker_url,
        # A queue of this test's own, so nothing left by another run reaches its worker.
        "CELERY_TASK_DEFAULT_QUEUE": "paywall-test-" + uuid.uuid4().hex[:10],
        "QUEUE_VISIBILITY_TIMEOUT": 5,
        "SMTP_URL": f"smtp://127.0.0.1:{inbox.port}",
        "MAIL_RETRY_SCHEDULE": mail_schedule,
        "QUEUE_SWEEP_INTERVAL": 1,
        "QUEUE_REDELIVER_AFTER": 3,
    }


class Worker:
    """``celery -A paywall.worker worker`` (optionally with beat) in a subprocess."""

    def __init__(
        self, env: dict[str, str], log: Path, beat: bool, schedule: Path, pool: str = "threads"
    ) -> None:
        self.env = env
        self.log = log
        self.beat = beat
        self.schedule = schedule
        self.pool = pool
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        command = [
            str(BIN / "celery"),
            "-A",
            "paywall.worker:celery",
            "worker",
            "--pool",
            self.pool,
            "--concurrency",
            "4",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        if self.beat:
            command += ["--beat", "--schedule", str(self.schedule)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, as when a host dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None


def worker_env(config: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYWALL_")}
    for key, value in config.items():
        env["PAYWALL_" + key] = value if isinstance(value, str) else json.dumps(value)
    return env


@pytest.fixture
def start_worker(
    database_url: str,
    inbox: Inbox,
    tmp_path: Path,
    artifacts_dir: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    """``start_worker(app, beat=False)`` starts a worker with ``app``'s settings (``beat`` adds
    the beat schedule in the same process; ``pool`` and ``env`` are the pool and extra
    environment variables)."""
    workers: list[Worker] = []
    log = artifacts_dir / f"worker-{request.node.name}.log".replace("/", "_")
    log.unlink(missing_ok=True)

    def start(
        app: Flask, beat: bool = False, pool: str = "threads", env: dict[str, str] | None = None
    ) -> Worker:
        keys = set(base_config(database_url, inbox.port)) | set(
            request.getfixturevalue("app_config")
        )
        keys |= {k for k in app.config if k.startswith(("STRIPE_", "CAP_", "QUEUE_", "CELERY_"))}
        config = {k: app.config[k] for k in keys if app.config.get(k) is not None}
        schedule = tmp_path / f"beat-{len(workers)}"
        worker = Worker({**worker_env(config), **(env or {})}, log, beat, schedule, pool)
        workers.append(worker.start())
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()
