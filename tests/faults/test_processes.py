"""gunicorn with deploy/gunicorn.conf.py: a master killed under webhook load leaves no worker
holding the port, a restarted master serves again and every event is stored once; a
worker killed mid-load loses nothing; /metrics adds up every worker (multiprocess mode)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from paywall.billing.models import StripeEvent
from paywall.extensions import db
from stripe_standin.webhooks import sign
from tests.conftest import PG_URL, free_port

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PAYWALL_TEST_DATABASE_URL")

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
TOKEN = uuid.uuid4().hex + uuid.uuid4().hex
LIVENESS = 60.0  # a generous bound on a shared machine; the death signal takes milliseconds


@pytest.fixture
def database_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: several processes write at once")
    return database_url


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"METRICS_TOKEN": TOKEN}


class Master:
    """``gunicorn -c deploy/gunicorn.conf.py wsgi:app`` in its own process group."""

    def __init__(
        self,
        app: Flask,
        port: int,
        log: Path,
        metrics_dir: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.log = log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PAYWALL_")}
        for key in (
            "DATABASE_URL",
            "SECRET_KEY",
            "ENTITLEMENT_SIGNING_KEYS",
            "VAPID_PRIVATE_KEY",
            "PUBLIC_URL",
            "SMTP_URL",
            "STRIPE_API_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "STRIPE_API_BASE",
            "RATELIMIT_STORAGE_URI",
            "METRICS_TOKEN",
            "CELERY_TASK_ALWAYS_EAGER",
            # The test app's hashing parameters, so a login does not rehash the password.
            "ARGON2_TIME_COST",
            "ARGON2_MEMORY_COST",
            "ARGON2_PARALLELISM",
        ):
            value = app.config[key]
            self.env["PAYWALL_" + key] = value if isinstance(value, str) else json.dumps(value)
        self.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, workers: int = 2) -> Master:
        command = [
            str(BIN / "gunicorn"),
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            # Long enough that gunicorn's own parent check (every timeout / 2) cannot be what
            # ends an orphaned worker within LIVENESS: only the death signal can.
            "--timeout",
            "600",
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - the venv's gunicorn
                [*command, "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + LIVENESS
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            if len(self.workers()) == workers:
                try:
                    if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise AssertionError("gunicorn did not come up:\n" + self.log.read_text()[-3000:])

    def workers(self) -> list[int]:
        assert self.proc is not None
        return children(self.proc.pid)

    def kill(self) -> list[int]:
        """SIGKILL the master alone (no cleanup, as the OOM killer does); returns its workers."""
        assert self.proc is not None
        orphans = self.workers()
        self.proc.kill()
        self.proc.wait(timeout=10)
        return orphans

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # our group only: stray workers
        self.proc = None


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(x) for x in (task / "children").read_text().split())
    except OSError:
        return []
    return sorted(set(found))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def masters(app: Flask, tmp_path: Path, artifacts_dir: Path) -> Iterator[Any]:
    started: list[Master] = []
    port = free_port()

    def start(workers: int = 2) -> Master:
        log = artifacts_dir / f"gunicorn-{port}.log"
        if not started:
            log.unlink(missing_ok=True)
        master = Master(app, port, log, tmp_path / "metrics").start(workers)
        started.append(master)
        return master

    try:
        yield start
    finally:
        for master in started:
            master.stop()


class Sender:
    """Stripe's side: each event POSTed until it gets a 2xx (Stripe retries for three days)."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret
        self.acked: list[str] = []
        self.failures = 0
        self.lock = threading.Lock()

    def send(self, count: int, deadline: float) -> None:
        http = requests.Session()
        for _ in range(count):
            event_id = f"evt_load_{uuid.uuid4().hex}"
            payload = json.dumps(
                {
                    "id": event_id,
                    "object": "event",
                    "type": "balance.available",
                    "created": int(time.time()),
                    "data": {"object": {"id": "txn_1", "object": "balance"}},
                }
            ).encode()
            while True:
                assert time.monotonic() < deadline, f"{event_id} never acknowledged"
                try:
                    response = http.post(
                        self.url + "/api/v1/stripe/webhook",
                        data=payload,
                        headers={
                            "Stripe-Signature": sign(payload, self.secret),
                            "Content-Type": "application/json",
                        },
                        timeout=10,
                    )
                    if response.status_code == 200:
                        break
                except requests.RequestException:
                    http = requests.Session()
                with self.lock:
                    self.failures += 1
                time.sleep(0.1)
            with self.lock:
                self.acked.append(event_id)


def stored_events(app: Flask) -> list[str]:
    with app.app_context():
        ids = list(db.session.scalars(select(StripeEvent.id)))
        db.session.remove()
        return ids


def load(sender: Sender, threads: int, each: int) -> list[threading.Thread]:
    deadline = time.monotonic() + 300
    workers = [
        threading.Thread(target=sender.send, args=(each, deadline), daemon=True)
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    return workers


def wait_for(condition: Any, timeout: float = LIVENESS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_master_killed_under_load_frees_the_port_and_loses_no_event(
    app: Flask, masters: Any
) -> None:
    first = masters()
    sender = Sender(first.url, app.config["STRIPE_WEBHOOK_SECRET"][0])
    threads = load(sender, threads=4, each=40)
    wait_for(lambda: len(sender.acked) >= 30)
    orphans = first.kill()
    assert orphans
    killed_at = time.monotonic()
    wait_for(lambda: not any(alive(pid) for pid in orphans))
    orphan_seconds = time.monotonic() - killed_at
    second = masters()  # what systemd's Restart= does: the port is free again
    for thread in threads:
        thread.join(timeout=300)
    assert len(sender.acked) == 160
    stored = stored_events(app)
    assert len(stored) == len(set(stored))
    assert set(sender.acked) <= set(stored)
    log = first.log.read_text()
    assert "Parent changed" not in log  # the orphans went on the death signal
    print(f"orphaned workers gone {orphan_seconds:.2f} s after the master was killed")
    second.stop()


def test_a_worker_killed_under_load_loses_no_event(app: Flask, masters: Any) -> None:
    master = masters()
    sender = Sender(master.url, app.config["STRIPE_WEBHOOK_SECRET"][0])
    threads = load(sender, threads=4, each=30)
    wait_for(lambda: len(sender.acked) >= 20)
    os.kill(master.workers()[0], signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=300)
    assert len(sender.acked) == 120
    stored = stored_events(app)
    assert set(sender.acked) <= set(stored)
    wait_for(lambda: len(master.workers()) == 2)  # the master replaced it


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = requests.get(
        url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_add_up_every_worker_even_one_that_died(
    app: Flask, masters: Any, tmp_path: Path
) -> None:
    master = masters(workers=3)
    ok = frozenset({"endpoint": "health.healthz", "method": "GET", "status": "200"}.items())
    key = ("paywall_http_requests_total", ok)
    before = scrape(master.url).get(key, 0.0)
    # Several connections at once, so more than one worker answers.
    done: list[int] = []

    def hit(n: int) -> None:
        for _ in range(n):
            assert requests.get(master.url + "/healthz", timeout=10).status_code == 200
            done.append(1)

    hitters = [threading.Thread(target=hit, args=(50,)) for _ in range(6)]
    for t in hitters:
        t.start()
    for t in hitters:
        t.join(timeout=300)
    assert len(done) == 300
    files = list((tmp_path / "metrics").glob("counter_*.db"))
    assert len(files) >= 2, files  # several processes wrote counters
    assert scrape(master.url)[key] - before == 300
    os.kill(master.workers()[0], signal.SIGKILL)  # its counts must not vanish
    wait_for(lambda: len(master.workers()) == 3)
    assert scrape(master.url)[key] - before == 300


def test_the_access_log_has_paths_without_query_strings_or_referrers(masters: Any) -> None:
    master = masters(workers=1)
    secret = uuid.uuid4().hex
    response = requests.get(
        master.url + f"/healthz?token={secret}",
        headers={"Referer": f"https://news.example/reset?token={secret}x"},
        timeout=10,
    )
    assert response.status_code == 200
    wait_for(lambda: '"GET /healthz HTTP/1.1" 200' in master.log.read_text())
    assert secret not in master.log.read_text()
