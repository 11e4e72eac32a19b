"""Catalogue webhooks at scale: ``price.updated`` latency with 1,000 and 100,000 live subscribers.

A catalogue change may lower a plan's device cap, and enforcing it touches every subscriber;
the webhook only re-reads the catalogue and records one job (the worker walks the subscribers
in batches), so its latency must not grow with the audience. The service runs under the same
gunicorn as the other benchmarks, with Redis as the job broker (a queue of this run's own that
no worker reads: the benchmark measures the webhook, not the enforcement).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from typing import TYPE_CHECKING

from bench import database
from bench.procs import Gunicorn, free_port
from bench.stats import Runs

if TYPE_CHECKING:
    from bench.runner import Context

PATH = "/api/v1/stripe/webhook"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def live_subscribers(url: str) -> int:
    with database.connect(url) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT account_id) FROM billing_subscriptions"
            " WHERE status IN ('active', 'trialing', 'past_due')"
        ).fetchone()
    return int(row[0]) if row else 0


def top_up(url: str, target: int, price_id: str) -> float:
    """Insert subscribed accounts until ``target`` live subscribers exist; returns seconds."""
    started = time.perf_counter()
    have = live_subscribers(url)
    if have >= target:
        return 0.0
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        params = {"a": have + 1, "b": target, "p": price_id}
        cur.execute(
            "INSERT INTO accounts (id, email, password_hash, email_verified_at, created_at,"
            " password_changed_at)"
            " SELECT md5('cat-account-' || i), 'cat' || i || '@bench.example.com', 'x',"
            "   now(), now(), now() FROM generate_series(%(a)s::int, %(b)s::int) AS i",
            params,
        )
        cur.execute(
            "INSERT INTO billing_customers (account_id, stripe_customer_id, created_at)"
            " SELECT md5('cat-account-' || i), 'cus_cat_' || i, now()"
            " FROM generate_series(%(a)s::int, %(b)s::int) AS i",
            params,
        )
        cur.execute(
            "INSERT INTO billing_subscriptions (id, account_id, stripe_customer_id, price_id,"
            " status, current_period_end, cancel_at_period_end, created_at, synced_at)"
            " SELECT 'sub_cat_' || i, md5('cat-account-' || i), 'cus_cat_' || i, %(p)s,"
            "   'active', now() + interval '30 days', false, now(), now()"
            " FROM generate_series(%(a)s::int, %(b)s::int) AS i",
            params,
        )
        # Two device sessions each: what the enforcement would have to look at.
        cur.execute(
            "INSERT INTO device_sessions (id, account_id, token_digest, device_name, user_agent,"
            " created_at, last_seen_at, expires_at)"
            " SELECT md5('cat-session-' || i || '-' || d), md5('cat-account-' || i),"
            "   md5('cat-digest-' || i || '-' || d), 'Bench', 'bench/1.0', now(), now(),"
            "   now() + interval '300 days'"
            " FROM generate_series(%(a)s::int, %(b)s::int) AS i, generate_series(1, 2) AS d",
            params,
        )
        conn.commit()
        cur.execute("ANALYZE")
    return time.perf_counter() - started


def price_event(ctx: Context) -> tuple[str, dict[str, str]]:
    price = next(p for p in ctx.standin.objects("price") if p.get("lookup_key"))
    body = json.dumps(
        {
            "id": "evt_bench_cat_" + uuid.uuid4().hex[:20],
            "object": "event",
            "api_version": ctx.standin.state.api_version,
            "created": int(time.time()),
            "data": {"object": price, "previous_attributes": {}},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": "price.updated",
        },
        separators=(",", ":"),
    )
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": ctx.standin.sign(body.encode()),
    }
    return body, headers


def latencies(ctx: Context, server: Gunicorn, count: int) -> list[float]:
    """Milliseconds for ``count`` price.updated deliveries, one at a time."""
    times = []
    for _ in range(count):
        body, headers = price_event(ctx)
        t = time.perf_counter()
        status, answer = ctx.post(server.url + PATH, data=body.encode(), headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        if status != 200 or answer.get("outcome") != "processed":
            raise RuntimeError(f"price.updated answered {status}: {answer}")
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def serve(ctx: Context, kind: str, queue_name: str) -> Gunicorn:
    from bench.runner import GUNICORN

    state = ctx.dbs[kind]
    port = free_port()
    env = ctx.service_env(state.url, port)
    env.update(
        {"PAYWALL_CELERY_BROKER_URL": REDIS, "PAYWALL_CELERY_TASK_DEFAULT_QUEUE": queue_name}
    )
    server = Gunicorn(
        f"service-{kind}",
        "wsgi:app",
        env,
        GUNICORN,
        ctx.logs / f"service-{kind}.log",
        port=port,
        dbname=state.name,
    )
    return server.start()


def run(ctx: Context) -> None:
    sizes = {"catalogue_small": 100, "catalogue_large": 1_000}
    if not ctx.plan.smoke:
        sizes = {"catalogue_small": 1_000, "catalogue_large": 100_000}
    events = 8 if ctx.plan.smoke else 40
    seeded: dict[int, float] = {}
    have: dict[str, int] = {}
    for kind, size in sizes.items():
        state = ctx.prepare_db(kind)
        price = database.premium_price_id(state.url)
        assert price is not None
        seeded[size] = top_up(state.url, size, price)
        have[kind] = live_subscribers(state.url)
    queue_name = "paywall-bench-" + uuid.uuid4().hex[:8]
    servers: dict[str, Gunicorn] = {}
    medians: dict[str, list[float]] = {k: [] for k in sizes}
    samples: dict[str, list[float]] = {k: [] for k in sizes}
    jobs = 0
    try:
        for kind in sizes:
            servers[kind] = serve(ctx, kind, queue_name)
            latencies(ctx, servers[kind], 3)  # warm the workers and the catalogue cache
        kinds = list(sizes)
        for r in range(ctx.plan.runs):  # the two sizes alternate, so noise hits both
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                times = latencies(ctx, servers[kind], events)
                medians[kind].append(statistics.median(times))
                samples[kind].extend(times)
        for kind in sizes:
            with database.connect(ctx.dbs[kind].url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM queue_jobs WHERE task = 'billing.enforce_caps'"
                ).fetchone()
            jobs += int(row[0]) if row else 0
    finally:
        for server in servers.values():
            server.stop()
        drop_queue(queue_name)
    small, large = list(sizes)
    measured = {have[k]: Runs.of(medians[k]) for k in sizes}
    p95 = {have[k]: pct(samples[k], 0.95) for k in sizes}
    ratio = Runs.of([b / a for a, b in zip(medians[small], medians[large], strict=True)])
    n_small, n_large = have[small], have[large]
    ctx.results["catalogue"] = {str(k): v for k, v in measured.items()}
    ctx.report.rows.append(
        ctx.row(
            f"Catalogue webhook (`price.updated`) at {n_large:,} live subscribers: median",
            f"{measured[n_large].fmt(1, 'ms')}; p95 {p95[n_large]:.1f} ms",
            f"{measured[n_small].median:.1f} ms at {n_small:,} subscribers"
            f" (p95 {p95[n_small]:.1f} ms)",
            ratio.fmt(2, "×"),
            "flat: ≤ 1.5×",
            ratio.median <= 1.5,
        )
    )
    sec = ctx.report.section("catalogue", "Catalogue webhooks at scale", ctx.command("catalogue"))
    sec.add(
        f"`POST {PATH}` with a signed `price.updated` event (the stand-in's own price), one"
        f" delivery at a time from the harness, {events} per run, {ctx.plan.runs} runs per size,"
        " the two sizes alternating run by run, each on its own database and gunicorn (the"
        " median of each run; spread across runs in parentheses). Live subscribers are"
        " accounts with an active subscription and two device sessions each, inserted"
        " directly before the runs"
        f" ({', '.join(f'{k:,}: {v:.1f} s' for k, v in seeded.items())} to insert).",
        "",
        "| live subscribers | median latency | p95 (all deliveries) |",
        "|---:|---:|---:|",
    )
    for size in sorted(measured):
        sec.add(f"| {size:,} | {measured[size].fmt(1, 'ms')} | {p95[size]:.1f} ms |")
    sec.add(
        "",
        f"Ratio {n_large:,} / {n_small:,}, run by run: {ratio.fmt(2, '×')}.",
        "",
        "What the webhook does: verifies the signature, stores the event, re-reads the"
        " catalogue from Stripe (`sync_plans`: a list of products and prices, independent of"
        " the audience) and records one `billing.enforce_caps` job, sent to the broker after"
        f" the commit ({jobs:,} such jobs recorded in this run, read by no worker here). A"
        " worker then walks the subscribers in batches of `PAYWALL_CAP_ENFORCEMENT_BATCH`"
        " (500), each batch queueing the next; tests/queue/test_catalogue.py runs that with a"
        " real worker.",
    )


def drop_queue(name: str) -> None:
    """Delete this run's Redis queue (messages no worker read)."""
    import redis

    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"{name}*"):
        client.delete(key)
