"""Benchmark 4: Stripe webhooks (``POST /api/v1/stripe/webhook``), signed events delivered as
fast as the service takes them.

Three streams, alternating run by run, plus the bare endpoint with the same bodies:

- re-fetch: ``customer.subscription.updated`` for subscriptions the service owns (readers who
  went through the service's checkout and paid on the stand-in); each event makes the service
  fetch the subscription from the Stripe stand-in and store it;
- ignored: the same bodies with a type the service does not handle (stored, no re-fetch);
- duplicates: re-deliveries of events already processed (answered from the stored row).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import anatomy, database, loadgen
from bench.loadgen import LoadResult, Request
from bench.refresh import cpu_table, load_table, summarize
from bench.stats import Runs

if TYPE_CHECKING:
    from bench.runner import Context, DbState

PATH = "/api/v1/stripe/webhook"
REFETCH = "customer.subscription.updated"
IGNORED = "customer.subscription.pending_update_applied"  # not handled: stored as ignored


class Stream:
    def __init__(self, ctx: Context, subs: list[dict[str, Any]], primed: list[str]) -> None:
        self.ctx = ctx
        self.subs = subs
        self.primed = primed
        self.api_version = ctx.standin.state.api_version

    def body(self, event_type: str, sub: dict[str, Any], event_id: str | None = None) -> str:
        event = {
            "id": event_id or "evt_bench_" + uuid.uuid4().hex[:24],
            "object": "event",
            "api_version": self.api_version,
            "created": int(time.time()),
            "data": {"object": sub, "previous_attributes": {}},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        return json.dumps(event, separators=(",", ":"))

    def request(self, body: str, path: str = PATH) -> Request:
        return Request(
            "POST",
            path,
            {
                "Content-Type": "application/json",
                "Stripe-Signature": self.ctx.standin.sign(body.encode()),
            },
            body,
        )

    def file(self, kind: str, n: int, name: str) -> Path:
        subs = self.subs
        if kind == "refetch":
            reqs = [self.request(self.body(REFETCH, subs[i % len(subs)])) for i in range(n)]
        elif kind == "ignored":
            reqs = [self.request(self.body(IGNORED, subs[i % len(subs)])) for i in range(n)]
        elif kind == "duplicate":
            reqs = [
                self.request(
                    self.body(REFETCH, subs[i % len(subs)], self.primed[i % len(self.primed)])
                )
                for i in range(min(n, 4 * len(self.primed)))
            ]
        elif kind == "bare":
            reqs = [
                self.request(self.body(REFETCH, subs[i % len(subs)]), "/webhook")
                for i in range(min(n, 2000))
            ]
        else:
            raise ValueError(kind)
        return self.ctx.requests_file(name, reqs)


def subscribe(ctx: Context, state: DbState) -> list[dict[str, Any]]:
    """Each billing reader checks out through the service and pays on the stand-in."""
    assert state.server is not None
    subs = []
    for token in state.fixtures.billing_tokens:
        status, body = ctx.post(
            state.server.url + "/api/v1/billing/checkout",
            {"plan": "premium_monthly"},
            headers={"Authorization": f"Bearer {token}"},
        )
        if status != 201:
            raise RuntimeError(f"checkout answered {status}: {body}")
        session_id = body["url"].rstrip("/").rsplit("/", 1)[1]
        completed = ctx.standin.complete_checkout(session_id)
        subs.append(ctx.standin.get(completed["subscription"]))
    return subs


def deliver(ctx: Context, url: str, req: Request) -> dict[str, Any]:
    status, body = ctx.post(url + req.path, data=req.body.encode(), headers=req.headers)
    if status != 200:
        raise RuntimeError(f"webhook answered {status}: {body}")
    return body  # type: ignore[no-any-return]


def refetch_ms(ctx: Context, sub_ids: list[str], n: int) -> float:
    """Median ms of the re-fetch alone: the service's gateway retrieving a subscription."""
    from paywall.billing.gateway import StripeGateway

    gateway = StripeGateway(ctx.stripe_key, api_base=ctx.standin.url, max_network_retries=0)
    times = []
    for i in range(n):
        t = time.perf_counter()
        gateway.retrieve_subscription(sub_ids[i % len(sub_ids)])
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def run(ctx: Context) -> None:
    state = ctx.dbs["empty"]
    server = ctx.start_service("empty")
    bare = ctx.start_bare()
    plan = ctx.plan
    subs = subscribe(ctx, state)
    stream = Stream(ctx, subs, [])
    primed = []
    for sub in subs:  # the service stores each subscription once (first sync inserts it)
        event_id = "evt_bench_" + uuid.uuid4().hex[:24]
        body = deliver(
            ctx,
            server.url,
            stream.request(stream.body("customer.subscription.created", sub, event_id)),
        )
        if body.get("outcome") != "processed":
            raise RuntimeError(f"priming event not processed: {body}")
        primed.append(event_id)
    stream.primed = primed
    ctx.notes["webhook_stream"] = stream
    for kind, want in (
        ("refetch", "processed"),
        ("ignored", "ignored"),
        ("duplicate", "duplicate"),
    ):
        req = stream.file(kind, 1, f"webhook-check-{kind}").read_text().splitlines()[0]
        method, path, hdrs, body_text = req.split("\t", 3)
        headers = dict(h.split(": ", 1) for h in hdrs.split("|"))
        got = deliver(ctx, server.url, Request(method, path, headers, body_text))
        if got.get("outcome") != want:
            raise RuntimeError(f"{kind} event: expected {want}, got {got}")
    sub_ids = [s["id"] for s in subs]
    body_bytes = len(stream.body(REFETCH, subs[0]))

    names = {
        "bare": "bare Flask `/webhook` (same bodies)",
        "refetch": f"`{REFETCH}` (re-fetch from the stand-in)",
        "ignored": "ignored type (stored, no re-fetch)",
        "duplicate": "duplicate deliveries (no re-fetch)",
    }
    kinds = list(names)
    results: dict[str, list[tuple[LoadResult, dict[str, float]]]] = {k: [] for k in kinds}
    estimate: dict[str, float] = {}
    for kind in kinds if plan.warmup > 0 else ():  # warm-up; how many events a run needs
        target = bare if kind == "bare" else server
        f = stream.file(
            kind,
            max(200, int(plan.webhook_events * plan.warmup / plan.seconds)),
            f"webhook-warmup-{kind}",
        )
        res, _ = ctx.load(target, f, seconds=plan.warmup, label=f"webhook warm-up {kind}")
        estimate[kind] = res.rps
    refetch_alone = []
    for r in range(plan.runs):
        refetch_alone.append(refetch_ms(ctx, sub_ids, 20 if not plan.smoke else 3))
        order = kinds if r % 2 == 0 else list(reversed(kinds))
        for kind in order:
            target = bare if kind == "bare" else server
            # Enough distinct events for three times the fastest rate seen so far (the
            # warm-up runs on a cold server and can be much slower than a measured run).
            fastest = estimate.get(kind, 1e9)
            n = min(plan.webhook_events, max(1000, int(fastest * plan.seconds * 3)))
            f = stream.file(kind, n, f"webhook-{kind}")
            run = ctx.load(target, f, seconds=plan.seconds, label=f"webhook {kind}")
            if run[0].wrapped and kind in ("refetch", "ignored"):
                ctx.sanity.append(f"webhook {kind}: ran out of distinct events ({n})")
            results[kind].append(run)
            estimate[kind] = max(estimate.get(kind, 0.0), run[0].rps)
    summary = {k: summarize(v) for k, v in results.items()}
    with database.connect(state.url) as conn:
        outcomes = conn.execute(
            "SELECT status, count(*) FROM stripe_events GROUP BY status ORDER BY status"
        ).fetchall()
    ctx.results["webhooks"] = {k: v for k, v in results.items()}
    ctx.notes["webhooks"] = summary
    fetch = Runs.of(refetch_alone)

    b = summary["bare"]
    for kind in ("refetch", "ignored", "duplicate"):
        s = summary[kind]
        ctx.report.rows.append(
            ctx.row(
                f"4. Webhooks, {names[kind]}: events/s, p99",
                f"{s['rps'].fmt(0, '/s')}; p99 {s['p99'].fmt(1, 'ms')}",
                f"{b['rps'].median:.0f}/s, p99 {b['p99'].median:.1f} ms bare",
                f"{s['rps'].median / b['rps'].median:.2f}× (p99 "
                f"{s['p99'].median / b['p99'].median:.1f}×)",
                "— (errors: 0)",
                s["errors"] == 0,
            )
        )
    sec = ctx.report.section("webhooks", "4. Stripe webhooks", ctx.command("webhooks"))
    sec.add(
        f"`POST {PATH}` with Stripe-signed bodies ({body_bytes:,} bytes: an event envelope around"
        f" the stand-in's full subscription object), generated and signed just before each run"
        f" (Stripe's 5-minute tolerance). {len(subs)} readers subscribed through the service's"
        " checkout (`POST /api/v1/billing/checkout`) and paid on the stand-in; each"
        " subscription was stored once by a `customer.subscription.created` delivery before"
        " the runs. Events cycle over the subscriptions with a new event id each"
        " (duplicates: the stored ids again).",
        f"Same service and gunicorn configuration as benchmark 2; the Stripe stand-in runs in"
        f" the harness process (werkzeug, threaded). Load:"
        f" `{loadgen.display_command(plan.connections, plan.seconds)}`, {plan.warmup:g}s"
        f" warm-up per stream, {plan.runs} runs per stream, streams alternating.",
        "",
    )
    sec.body += load_table({names[k]: summary[k] for k in kinds})
    sec.add(
        "",
        f"The re-fetch alone (the service's `StripeGateway.retrieve_subscription` against the"
        f" stand-in, from the harness, one at a time): {fetch.fmt(2, 'ms')} median.",
        "",
        "Stored events after the runs: "
        + ", ".join(f"{status} {count:,}" for status, count in outcomes)
        + ".",
        "",
    )
    sec.body += cpu_table({k: summary[k] for k in kinds})
    sec.add("")
    app = anatomy.app_for(ctx, state)
    traces: dict[str, list[str]] = {}
    for kind, title in (
        ("refetch", f"`{REFETCH}` event (re-fetch)"),
        ("ignored", "ignored event"),
        ("duplicate", "duplicate delivery"),
    ):
        if kind == "duplicate":
            text = stream.body(REFETCH, subs[0], primed[0])
        else:
            text = stream.body(REFETCH if kind == "refetch" else IGNORED, subs[0])
        signed = stream.request(text)
        status, events = anatomy.trace(
            app, "POST", PATH, data=text.encode(), headers=signed.headers
        )
        traces[kind] = events
        sec.body += anatomy.section_lines(
            title,
            status,
            events,
            "plus, for the re-fetch, one HTTP request to the stand-in" if kind == "refetch" else "",
        )
    ctx.notes["webhook_events"] = traces
    ctx.notes_for("webhooks", sec, summary, fetch)
