"""Redis, the broker, killed under load: requests keep answering (the jobs are rows), messages
lost with Redis are sent again by the beat sweep once it is back, and every email arrives once."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import free_port
from tests.queue.conftest import Inbox
from tests.queue.test_mail import _open_jobs
from tests.queue.test_queue import queue_email, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """A private redis-server (no persistence: what it holds dies with it)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.proc = subprocess.Popen(  # noqa: S603 - Debian's redis-server
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client))
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.kill()


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Redis]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    server = Redis(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker_url(private_redis: Redis) -> str:
    return private_redis.url


def test_redis_killed_under_load_every_email_still_arrives_once(
    app: Flask, inbox: Inbox, start_worker: Any, private_redis: Redis
) -> None:
    start_worker(app, beat=True)
    before = [f"before{i}@example.com" for i in range(10)]
    during = [f"during{i}@example.com" for i in range(10)]
    for address in before:
        queue_email(app, address)
    inbox.wait_for(len(before), timeout=120)
    private_redis.kill()  # with every message it held
    started = time.monotonic()
    for address in during:
        queue_email(app, address)  # the request commits; the send to Redis fails, is logged
    assert time.monotonic() - started < 60  # a liveness bound: no request waits on Redis
    assert _open_jobs(app) >= len(during)
    private_redis.start()  # same port, empty
    inbox.wait_for(len(before) + len(during), timeout=180)
    wait_until(lambda: _open_jobs(app) == 0, timeout=120)
    time.sleep(1)
    assert inbox.count_to() == dict.fromkeys(before + during, 1)
