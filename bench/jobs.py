"""Queue throughput: emails through a real Celery worker, against sending them directly, and the
cost of the beat sweep over a table of jobs.

- Baseline: the harness sends the same messages to the same SMTP server (aiosmtpd on loopback)
  itself, one SMTP connection per message as the worker opens, from one thread.
- Queue: ``Outbox.enqueue`` records N emails in one transaction (N ``queue_jobs`` rows, sent to
  Redis after the commit); one ``celery -A paywall.worker:celery worker`` (prefork, concurrency
  2, this run's own Redis queue) sends them; measured from the commit until the last job row is
  marked done. Each job locks its row, sends, and commits.
- Sweep: ``paywall.queue.sweep`` over the same table (N finished jobs plus open ones not due)
  when nothing is due, and when N jobs are due and re-sent.
"""

from __future__ import annotations

import os
import signal
import smtplib
import statistics
import subprocess
import threading
import time
import uuid
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from bench.catalogue import REDIS, drop_queue
from bench.procs import BIN, ROOT, free_port
from bench.stats import Runs

if TYPE_CHECKING:
    from bench.runner import Context


class Sink:
    """An SMTP server that accepts everything and counts it."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.count += 1
        return "250 OK"

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def direct_rate(port: int, n: int) -> float:
    """Messages per second sent by the harness itself, a connection per message."""
    started = time.perf_counter()
    for i in range(n):
        message = EmailMessage()
        message["From"] = "bench@bench.example.com"
        message["To"] = f"direct{i}@bench.example.com"
        message["Subject"] = "hello"
        message.set_content("hi")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
    return n / (time.perf_counter() - started)


class Watch:
    """Counts open jobs over one autocommit connection (a connection per poll would cost the
    machine more than the jobs it watches)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def open_jobs(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM queue_jobs WHERE finished_at IS NULL"
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()


def run(ctx: Context) -> None:
    n = 40 if ctx.plan.smoke else int(os.environ.get("BENCH_QUEUE_JOBS", "1000"))
    state = ctx.prepare_db("queue")
    queue_name = "paywall-bench-" + uuid.uuid4().hex[:8]
    with Sink() as sink:
        env = ctx.service_env(state.url, 0)
        env.update(
            {
                "PAYWALL_CELERY_BROKER_URL": REDIS,
                "PAYWALL_CELERY_TASK_DEFAULT_QUEUE": queue_name,
                "PAYWALL_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
            }
        )
        app = _app(env)
        worker = _start_worker(env, ctx.logs / "queue-worker.log")
        rates: list[float] = []
        direct: list[float] = []
        watch = Watch(state.url)
        try:
            _wait_ready(app, watch, sink)
            for _ in range(ctx.plan.runs):
                direct.append(direct_rate(sink.port, max(20, n // 4)))
                rates.append(_queue_rate(app, watch, n))
            sweep_idle, sweep_due, total = _sweep_cost(app, n)
        finally:
            watch.close()
            _stop(worker)
            drop_queue(queue_name)
    queue_rate = Runs.of(rates)
    direct_runs = Runs.of(direct)
    ratio = queue_rate.median / direct_runs.median
    ctx.results["queue"] = {"queue": queue_rate, "direct": direct_runs}
    ctx.report.rows.append(
        ctx.row(
            "Queue: emails through one Celery worker (prefork, 2 processes): jobs/s",
            queue_rate.fmt(0, "/s"),
            f"{direct_runs.median:.0f}/s sent directly (one process)",
            f"{ratio:.2f}×",
            "—",
            None,
        )
    )
    ctx.report.rows.append(
        ctx.row(
            f"Queue: one beat sweep, {total:,} jobs in the table: nothing due / {n:,} due",
            f"{sweep_idle:.1f} ms / {sweep_due:.0f} ms",
            "—",
            "—",
            "—",
            None,
        )
    )
    sec = ctx.report.section("queue", "Queue throughput", ctx.command("queue"))
    sec.add(
        *(__doc__ or "").replace("``", "`").strip().splitlines()[3:],
        "",
        f"{n:,} emails per run, {ctx.plan.runs} runs; the direct baseline sends"
        f" {max(20, n // 4):,} per run, in the same run, to the same server.",
        "",
        "| | per second |",
        "|---|---:|",
        f"| emails through the queue (commit → last job done) | {queue_rate.fmt(0)} |",
        f"| emails sent directly by one process | {direct_runs.fmt(0)} |",
        "",
        f"The sweep (one `SELECT … LIMIT 1000` over `queue_jobs` by its open-jobs index, then"
        f" a send per due job), with {total:,} jobs in the table, all finished:"
        f" {sweep_idle:.1f} ms when nothing is due, {sweep_due:.0f} ms when"
        f" {n:,} jobs are due (it re-sends at most 1,000 per run).",
    )


def _app(env: dict[str, str]) -> Any:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from paywall import create_app

        return create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _start_worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - the venv's celery
            [
                str(BIN / "celery"),
                "-A",
                "paywall.worker:celery",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=5)


def _enqueue(app: Any, n: int) -> float:
    """Record ``n`` emails in one transaction; returns the moment just before its commit."""
    from paywall.extensions import db
    from paywall.outbox.services import Outbox

    with app.app_context():
        outbox = Outbox(db.session)
        for i in range(n):
            outbox.enqueue(
                kind="bench", to=f"queued{i}@bench.example.com", subject="hello", body="hi"
            )
        committed = time.perf_counter()
        db.session.commit()  # the jobs go to the broker now
        db.session.remove()
    return committed


def _wait_ready(app: Any, watch: Watch, sink: Sink) -> None:
    """One email through the worker: it is up and has loaded the app."""
    before = sink.count
    _enqueue(app, 1)
    deadline = time.monotonic() + 120
    while sink.count == before or watch.open_jobs():
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not send the first email within 120 s")
        time.sleep(0.1)


def _queue_rate(app: Any, watch: Watch, n: int) -> float:
    started = _enqueue(app, n)
    deadline = time.monotonic() + 600
    while watch.open_jobs():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{watch.open_jobs()} of {n} jobs still open after 600 s")
        time.sleep(0.05)
    return n / (time.perf_counter() - started)


def _sweep_cost(app: Any, n: int) -> tuple[float, float, int]:
    """ms of one sweep with nothing due, and with ``n`` jobs due (the worker then finds their
    emails sent and only marks the jobs done)."""
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from paywall.clock import utcnow
    from paywall.extensions import db
    from paywall.queue import Job, sweep

    with app.app_context():
        total = int(db.session.scalar(select(func.count(Job.id))) or 0)
        idle = []
        for _ in range(5):
            t = time.perf_counter()
            sweep(db.session)
            idle.append((time.perf_counter() - t) * 1000)
        # n jobs as a lost broker leaves them: recorded, never finished, sent long ago.
        ids = list(db.session.scalars(select(Job.id).order_by(Job.id.desc()).limit(n)))
        long_ago = utcnow() - timedelta(days=1)
        db.session.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(finished_at=None, outcome=None, sent_at=long_ago, run_after=long_ago)
        )
        db.session.commit()
        t = time.perf_counter()
        sweep(db.session)  # sends them; the worker finds the emails sent and does nothing
        due = (time.perf_counter() - t) * 1000
        db.session.remove()
    return statistics.median(idle), due, total
