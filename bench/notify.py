"""Benchmark: one story fanned out to many push subscriptions at the local push service.

The story is published in this process (``StoryService.publish`` and a commit, as the API
does); Celery workers (``--pool prefork``, one process per core) plan it and deliver it in
batches from PostgreSQL, over Redis, to the push stand-in (``push_standin``, VAPID checked,
decryption off). Every subscription belongs to a Premium reader with a live device session,
so each delivery checks the reader's entitlement as in production.

Baselines, measured in the same run on the same machine:

- *encrypt + sign*: RFC 8291 encryption (pywebpush/http-ece) and an RFC 8292 VAPID signature
  (py-vapid) of one message, in a loop, nothing sent: the raw cost the issue compares with;
- *bare POST loop*: ``PushSender.send`` (encrypt, cached VAPID header, POST) to the same
  stand-in in one thread, no database and no queue: what one core can push with no
  bookkeeping.

``BENCH_NOTIFY_SUBSCRIPTIONS`` overrides the number of subscriptions (a partial run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import database
from bench.procs import BIN, ROOT, children, memory_of
from bench.runner import log
from bench.stats import Runs, num

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bench.runner import Context

BROKER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
SITE = "https://news.bench.example"


def subscriptions(ctx: Context) -> int:
    override = os.environ.get("BENCH_NOTIFY_SUBSCRIPTIONS")
    return int(override) if override else ctx.plan.notify_subscriptions


def seed(url: str, price_id: str, subs: list[dict[str, Any]]) -> None:
    """One Premium reader with one live device session and one push subscription per entry."""
    import hashlib

    now = datetime.now(UTC)
    with database.connect(url) as conn, conn.cursor() as cur:
        rows: dict[str, list[tuple[Any, ...]]] = {
            "accounts": [],
            "sessions": [],
            "customers": [],
            "subs": [],
            "push": [],
        }
        for i, sub in enumerate(subs):
            aid, sid = database.new_id(), database.new_id()
            rows["accounts"].append(
                (aid, f"n{i}@bench.example.com", "x", now, now - timedelta(days=30), now)
            )
            rows["sessions"].append(
                (
                    sid,
                    aid,
                    database.new_id() * 2,
                    "Phone",
                    "bench/1.0",
                    now,
                    now,
                    now + timedelta(days=365),
                )
            )
            cus = f"cus_notify_{i}"
            rows["customers"].append((aid, cus, now))
            rows["subs"].append(
                (
                    f"sub_notify_{i}",
                    aid,
                    cus,
                    price_id,
                    "active",
                    now + timedelta(days=30),
                    False,
                    now,
                    now,
                )
            )
            endpoint = sub["endpoint"]
            rows["push"].append(
                (
                    database.new_id(),
                    aid,
                    sid,
                    endpoint,
                    hashlib.sha256(endpoint.encode()).hexdigest(),
                    sub["keys"]["p256dh"],
                    sub["keys"]["auth"],
                    now,
                )
            )
        statements = {
            "accounts": "COPY accounts (id, email, password_hash, email_verified_at, created_at,"
            " password_changed_at) FROM STDIN",
            "sessions": "COPY device_sessions (id, account_id, token_digest, device_name,"
            " user_agent, created_at, last_seen_at, expires_at) FROM STDIN",
            "customers": "COPY billing_customers (account_id, stripe_customer_id, created_at)"
            " FROM STDIN",
            "subs": "COPY billing_subscriptions (id, account_id, stripe_customer_id, price_id,"
            " status, current_period_end, cancel_at_period_end, created_at, synced_at)"
            " FROM STDIN",
            "push": "COPY push_subscriptions (id, account_id, device_session_id, endpoint,"
            " endpoint_digest, p256dh, auth, created_at) FROM STDIN",
        }
        for name, statement in statements.items():
            with cur.copy(statement) as copy:
                for row in rows[name]:
                    copy.write_row(row)
        conn.commit()
        cur.execute("ANALYZE")


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("PAYWALL_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({k: v for k, v in env.items() if k.startswith("PAYWALL_")})
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("PAYWALL_")]:
            del os.environ[key]
        os.environ.update(saved)


class Worker:
    """``celery worker --pool prefork --concurrency N``: N processes, one per core."""

    def __init__(self, env: dict[str, str], processes: int, log: Path) -> None:
        self.env, self.processes, self.log = env, processes, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        command = [
            str(BIN / "celery"),
            "-A",
            "paywall.worker:celery",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(self.processes),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while len(self.pids()) < self.processes:  # the pool's processes are up
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {self.log}")
            time.sleep(0.2)
        time.sleep(1.0)  # connected to the broker
        return self

    def pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc else []

    def rss(self) -> float:
        return sum(memory_of(pid).rss for pid in self.pids())

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


def raw_cost(key: Any, sub: dict[str, Any], payload: bytes, n: int) -> float:
    """Messages per second: encrypt (aes128gcm) and VAPID-sign each, nothing sent."""
    from pywebpush import WebPusher

    audience = sub["endpoint"].split("/push/")[0]
    started = time.perf_counter()
    for _ in range(n):
        WebPusher(sub).encode(payload, content_encoding="aes128gcm")
        key.sign({"aud": audience, "exp": int(time.time()) + 3600, "sub": "mailto:b@x.example"})
    return n / (time.perf_counter() - started)


def bare_loop(sender: Any, subs: list[dict[str, Any]], payload: bytes, n: int) -> float:
    """Messages per second: ``PushSender.send`` to the stand-in, one after another."""
    started = time.perf_counter()
    for i in range(n):
        sub = subs[i % len(subs)]
        result = sender.send(
            sub["endpoint"],
            sub["keys"]["p256dh"],
            sub["keys"]["auth"],
            payload,
            ttl=60,
            urgency="normal",
            topic="bench",
        )
        if not result.delivered:
            raise RuntimeError(f"bare loop: the stand-in answered {result.status}")
    return n / (time.perf_counter() - started)


def run(ctx: Context) -> None:
    from paywall.notifications.push import PushSender, load_vapid_key
    from push_standin import PushStandIn

    n = subscriptions(ctx)
    runs = ctx.plan.notify_runs
    if ctx.standin is None:
        ctx.start_standin()
    push = PushStandIn(verify=False).start()
    worker: Worker | None = None
    name = ctx.db_name("notify")
    try:
        url = database.recreate(name)
        env = ctx.service_env(url, 0)
        env.update(
            {
                "PAYWALL_SITE_URL": SITE,
                "PAYWALL_PUSH_ALLOWED_ORIGINS": push.url,
                "PAYWALL_CELERY_BROKER_URL": BROKER,
                "PAYWALL_CELERY_TASK_DEFAULT_QUEUE": "bench-notify-" + uuid.uuid4().hex[:8],
            }
        )
        database.flask_cli(env, "db", "upgrade")
        database.flask_cli(env, "billing", "create-demo-catalogue")
        price = database.premium_price_id(url)
        if price is None:
            raise RuntimeError("the demo catalogue has no premium_monthly plan")
        subs = push.many_subscriptions(n)
        seed(url, price, subs)

        from paywall import create_app
        from paywall.extensions import db
        from paywall.notifications.models import Story
        from paywall.notifications.services import push_payload, story_service

        with environment(env):
            app = create_app()
        key = load_vapid_key(ctx.vapid_key)
        story = Story(
            id="s",
            title="Parliament votes on the budget",
            url=SITE + "/a",
            summary="The vote is tonight.",
        )
        payload = push_payload(story)  # the message the workers send
        sender = PushSender(key, "mailto:b@x.example")
        loop_n = max(50, min(2000, n // 10))
        raw, bare = [], []
        one: list[dict[str, float]] = []
        two: list[dict[str, float]] = []
        for r in range(runs):
            raw.append(raw_cost(key, subs[0], payload, loop_n))
            bare.append(bare_loop(sender, subs, payload, loop_n))
            push.forget_messages()
            for processes, results in ((1, one), (2, two)):
                push.forget_messages()
                worker = Worker(env, processes, ctx.logs / f"notify-worker-{processes}.log")
                worker.start()
                results.append(fan_out(app, db, story_service, push, worker, n, f"{processes}-{r}"))
                worker.stop()
                worker = None
        sender.close()
        report(ctx, n, raw, bare, one, two)
    finally:
        if worker is not None:
            worker.stop()
        push.stop()
        try:
            database.drop(name)
        except Exception as exc:  # noqa: BLE001 - the run's result stands; recreated next run
            log(f"notify: could not drop {name}: {exc}")


def fan_out(
    app: Any, db: Any, story_service: Any, push: Any, worker: Worker, n: int, tag: str
) -> dict[str, float]:
    """Publish one story and wait for every subscription to hold it; the timings."""
    story_id = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    memory = [worker.rss()]
    with app.app_context():
        started = time.time()
        story_service().publish(
            {
                "id": story_id,
                "title": "Parliament votes on the budget",
                "url": SITE + "/a",
                "summary": "The vote is tonight.",
                "topics": [],
            }
        )
        db.session.commit()  # the plan job goes to the broker
        db.session.remove()
    deadline = time.monotonic() + 120 + n / 20
    last_sample = time.monotonic()
    while push.received() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fan-out {tag}: {push.received()} of {n} after the deadline")
        time.sleep(0.25)
        if time.monotonic() - last_sample >= 2:
            memory.append(worker.rss())
            last_sample = time.monotonic()
    memory.append(worker.rss())
    times = push.arrival_times()
    with app.app_context():
        counts = story_service().counts(story_id)
        db.session.remove()
    if counts["delivered"] != n:
        raise RuntimeError(f"fan-out {tag}: {counts}")
    span = max(times[-1] - times[0], 1e-6)
    return {
        "rate": n / span,
        "end_to_end": n / (times[-1] - started),
        "first": times[0] - started,
        "rss_start": memory[0],
        "rss_max": max(memory),
        "rss_end": memory[-1],
    }


def report(
    ctx: Context,
    n: int,
    raw: list[float],
    bare: list[float],
    one: list[dict[str, float]],
    two: list[dict[str, float]],
) -> None:
    rate1 = Runs.of(r["rate"] for r in one)
    rate2 = Runs.of(r["rate"] for r in two)
    raw_runs, bare_runs = Runs.of(raw), Runs.of(bare)
    vs_raw = Runs.of(a["rate"] / b for a, b in zip(one, raw, strict=True))
    vs_bare = Runs.of(a["rate"] / b for a, b in zip(one, bare, strict=True))
    scaling = Runs.of(b["rate"] / a["rate"] for a, b in zip(one, two, strict=True))
    first = Runs.of(r["first"] for r in one + two)
    growth = Runs.of(r["rss_end"] - r["rss_start"] for r in one)
    partial = n != ctx.plan.notify_subscriptions
    label = f"{n:,} subscriptions" + (" (partial run: fewer than the plan's)" if partial else "")
    ctx.results["notify"] = {"n": n, "raw": raw, "bare": bare, "one": one, "two": two}
    ctx.report.rows += [
        ctx.row(
            f"Push fan-out, deliveries/s on 1 worker core ({label})",
            rate1.fmt(0, "/s"),
            f"encrypt+sign {raw_runs.fmt(0, '/s')}",
            vs_raw.fmt(2, "×"),
            "≥ 0.5×",
            vs_raw.median >= 0.5,
        ),
        ctx.row(
            "Push fan-out vs a bare POST loop to the stand-in (no DB, no queue)",
            rate1.fmt(0, "/s"),
            f"bare loop {bare_runs.fmt(0, '/s')}",
            vs_bare.fmt(2, "×"),
            "—",
            None,
        ),
        ctx.row(
            "Push fan-out, time to the first delivery",
            first.fmt(2, "s"),
            "—",
            "—",
            "≤ 1 s",
            first.median <= 1.0,
        ),
        ctx.row(
            "Push fan-out, 2 worker processes vs 1",
            rate2.fmt(0, "/s"),
            rate1.fmt(0, "/s"),
            scaling.fmt(2, "×"),
            "≥ 1.7×",
            scaling.median >= 1.7,
        ),
        ctx.row(
            "Push fan-out, worker RSS growth over one fan-out (1 process)",
            growth.fmt(1, "MiB"),
            "—",
            "—",
            "flat",
            None,
        ),
    ]
    sec = ctx.report.section("notify", "Story notifications: push fan-out", ctx.command("notify"))
    sec.add(
        f"One story to {n:,} push subscriptions (one Premium reader and device session each) on"
        " PostgreSQL, jobs over Redis, pushes to the push stand-in on loopback (VAPID JWT"
        " verified, decryption off). Workers: `celery worker --pool prefork --concurrency"
        " 1|2`; batches of `PAYWALL_NOTIFICATION_BATCH_SIZE` (500). Deliveries/s is counted"
        " between the first and the last arrival at the stand-in; end to end includes planning."
        " Everything (PostgreSQL, Redis, the stand-in, the workers) shares the same cores, so"
        " two workers cannot reach twice one on a two-core machine.",
        "",
        "| Run | Workers | Deliveries/s | End to end/s | First delivery"
        " | Worker RSS start → max → end |",
        "|---|---|---|---|---|---|",
    )
    for i, (a, b) in enumerate(zip(one, two, strict=True)):
        for processes, r in ((1, a), (2, b)):
            sec.add(
                f"| {i + 1} | {processes} | {num(r['rate'], 0)} | {num(r['end_to_end'], 0)} |"
                f" {r['first']:.2f} s | {num(r['rss_start'])} → {num(r['rss_max'])} →"
                f" {num(r['rss_end'])} MiB |"
            )
    sec.add(
        "",
        f"Baselines per run: encrypt+sign {raw_runs.fmt(0, '/s')};"
        f" bare POST loop {bare_runs.fmt(0, '/s')} (one thread, this process).",
    )
