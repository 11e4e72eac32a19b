"""Benchmark 5: the token refresh and login latencies with an empty database and with 1,000,000
accounts, 5,000,000 device sessions (most of them over) and 1,000,000 stored webhook events,
and the query plans of the hot queries.

Both databases are served at once by two identical services, and runs alternate between them,
so the ratio compares like with like."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from bench import database, loadgen, login, refresh
from bench.report import code, table

if TYPE_CHECKING:
    from bench.runner import Context, DbState


def event_template() -> str:
    """A stored event like the ones the service keeps (~2 KB), its id a placeholder."""
    sub: dict[str, Any] = {
        "id": "sub_1ScaleSeed",
        "object": "subscription",
        "application": None,
        "automatic_tax": {"enabled": False},
        "billing_cycle_anchor": 1700000000,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "collection_method": "charge_automatically",
        "created": 1700000000,
        "currency": "usd",
        "customer": "cus_ScaleSeed",
        "default_payment_method": "pm_ScaleSeed",
        "description": None,
        "discounts": [],
        "ended_at": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_ScaleSeed",
                    "object": "subscription_item",
                    "created": 1700000000,
                    "current_period_end": 1702592000,
                    "current_period_start": 1700000000,
                    "metadata": {},
                    "quantity": 1,
                    "subscription": "sub_1ScaleSeed",
                    "price": {
                        "id": "price_ScaleSeed",
                        "object": "price",
                        "active": True,
                        "currency": "usd",
                        "lookup_key": "premium_monthly",
                        "nickname": "premium_monthly",
                        "product": "prod_ScaleSeed",
                        "recurring": {
                            "interval": "month",
                            "interval_count": 1,
                            "usage_type": "licensed",
                        },
                        "type": "recurring",
                        "unit_amount": 900,
                    },
                }
            ],
            "has_more": False,
            "url": "/v1/subscription_items?subscription=sub_1ScaleSeed",
        },
        "latest_invoice": "in_ScaleSeed",
        "livemode": False,
        "metadata": {"paywall_account_id": "0" * 32},
        "pause_collection": None,
        "start_date": 1700000000,
        "status": "active",
        "trial_end": None,
        "trial_start": None,
    }
    event = {
        "id": "__EVENT_ID__",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": 1700000000,
        "data": {"object": sub, "previous_attributes": {}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.subscription.updated",
    }
    return json.dumps(event, separators=(",", ":"))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - matches the seed's md5()


def hot_queries(
    ctx: Context, state: DbState, token: str, account_id: str, email: str, event_id: str
) -> list[tuple[str, str, Any]]:
    """The SQL the service itself sends on the hot paths, captured from its own code."""
    from sqlalchemy import event

    from paywall import create_app
    from paywall.accounts.services import account_service
    from paywall.billing.services import billing_service
    from paywall.billing.webhooks import WebhookService
    from paywall.devices.services import device_service
    from paywall.extensions import db

    app = create_app(
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
        }
    )
    captured: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    calls = [
        (
            "Session lookup by token digest (every authenticated request)",
            lambda: device_service().authenticate(token),
        ),
        (
            "Active sessions of an account (every login)",
            lambda: device_service().active_sessions(account_id),
        ),
        ("Account by email (every login)", lambda: account_service().find_by_email(email)),
        (
            "Event by id, locked (every webhook)",
            lambda: WebhookService(db.session, billing_service())._lock_event({"id": event_id}),
        ),
        (
            "Account by id, locked (every login and subscription webhook)",
            lambda: device_service().lock_account(account_id),
        ),
        (
            "Subscriptions of an account (every token refresh and login)",
            lambda: billing_service().current_subscription(account_id),
        ),
    ]
    out = []
    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", before)
        try:
            with app.test_request_context("/"):
                for name, call in calls:
                    captured.clear()
                    try:
                        call()
                    finally:
                        db.session.rollback()
                    if not captured:
                        raise RuntimeError(f"{name}: no statement captured")
                    out.append((name, captured[0][0], captured[0][1]))
        finally:
            event.remove(engine, "before_cursor_execute", before)
            db.session.remove()
            engine.dispose()
    return out


def explain_all(ctx: Context, state: DbState, probes: dict[str, str]) -> list[dict[str, Any]]:
    queries = hot_queries(
        ctx, state, probes["token"], probes["account_id"], probes["email"], probes["event_id"]
    )
    plans = []
    for name, statement, params in queries:
        text = database.explain(state.url, statement, params)
        plans.append(
            {"name": name, "sql": statement, "params": params, "plan": text, "ms": _exec_ms(text)}
        )
    return plans


def _exec_ms(plan: str) -> float:
    for line in plan.splitlines():
        if line.strip().startswith("Execution Time:"):
            return float(line.split(":")[1].split()[0])
    return float("nan")


def run(ctx: Context) -> None:
    plan = ctx.plan
    empty = ctx.dbs["empty"]
    ctx.start_service("empty")
    from bench.runner import log

    log(
        f"seeding {plan.scale.accounts:,} accounts, {plan.scale.sessions:,} sessions,"
        f" {plan.scale.events:,} events"
    )
    big = ctx.prepare_db("scale")
    timings = database.seed_scale(big.url, plan.scale, ctx.ensure_password_hash(), event_template())
    sizes = database.table_sizes(big.url)
    empty_sizes = database.table_sizes(empty.url)
    log("seeded: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    ctx.start_service("scale")

    files = {
        "empty": (
            refresh.service_requests(ctx, empty, "refresh-empty"),
            login.requests_for(ctx, empty, "login-empty"),
        ),
        "scale": (
            refresh.service_requests(ctx, big, "refresh-scale"),
            login.requests_for(ctx, big, "login-scale"),
        ),
    }
    states = {"empty": empty, "scale": big}
    for kind, state in states.items():  # warm-up, and a check that both answer
        assert state.server is not None
        refresh.check_one(ctx, state.server, state.fixtures.session_tokens[0])
        if plan.warmup > 0:
            ctx.load(state.server, files[kind][0], seconds=plan.warmup, label=f"{kind} warm-up")
            login.login_run(
                ctx,
                state,
                files[kind][1],
                connections=plan.connections,
                seconds=plan.warmup,
                label=f"{kind} login warm-up",
            )
    res: dict[str, dict[str, list[Any]]] = {k: {"refresh": [], "login": []} for k in states}
    for r in range(plan.scale_runs):
        order = ["empty", "scale"] if r % 2 == 0 else ["scale", "empty"]
        for kind in order:
            state = states[kind]
            assert state.server is not None
            res[kind]["refresh"].append(
                ctx.load(
                    state.server,
                    files[kind][0],
                    seconds=plan.seconds,
                    offset=r * 97,
                    label=f"{kind} refresh",
                )
            )
            res[kind]["login"].append(
                login.login_run(
                    ctx,
                    state,
                    files[kind][1],
                    connections=plan.connections,
                    seconds=plan.seconds,
                    label=f"{kind} login",
                )
            )
    for state in states.values():
        assert state.server is not None
        state.memory["after the load runs"] = ctx.worker_memory(state.server)
    summ = {k: {m: refresh.summarize(v) for m, v in d.items()} for k, d in res.items()}
    ctx.results["scale"] = {"timings": timings, "runs": res}

    # Query plans: the service's own statements, probing rows that exist.
    j = 5 * (plan.scale.accounts // 2) + 1  # an active seeded session (j % 5 == 1)
    acct = (j - 1) // 5 + 1
    probes_big = {
        "token": f"scale-session-{j}",
        "account_id": _md5(f"scale-account-{acct}"),
        "email": f"reader{acct}@scale.example.com",
        "event_id": "evt_" + _md5(f"scale-event-{plan.scale.events // 2}"),
    }
    with database.connect(empty.url) as conn:
        row = conn.execute("SELECT id FROM stripe_events LIMIT 1").fetchone()
    probes_empty = {
        "token": empty.fixtures.session_tokens[1],
        "account_id": empty.fixtures.session_accounts[1],
        "email": empty.fixtures.login_emails[1],
        "event_id": row[0] if row else "evt_none",
    }
    plans_big = explain_all(ctx, big, probes_big)
    plans_empty = explain_all(ctx, empty, probes_empty)
    ctx.results["query_plans"] = {"scale": plans_big, "empty": plans_empty}

    pairs = {
        m: refresh.paired(res["scale"][m], res["empty"][m], "p50_ms") for m in ("refresh", "login")
    }
    ratios = {m: r.median for m, r in pairs.items()}
    label = (
        f"{plan.scale.accounts:,} accounts / {plan.scale.sessions:,} sessions /"
        f" {plan.scale.events:,} events"
    )
    ctx.report.rows += [
        ctx.row(
            f"5. Token refresh p50 at scale ({label})",
            summ["scale"]["refresh"]["p50"].fmt(2, "ms"),
            summ["empty"]["refresh"]["p50"].fmt(2, "ms") + " empty db",
            pairs["refresh"].fmt(2, "×"),
            "≤ 1.2× empty",
            ratios["refresh"] <= 1.2,
        ),
        ctx.row(
            "5. Login p50 at scale",
            summ["scale"]["login"]["p50"].fmt(1, "ms"),
            summ["empty"]["login"]["p50"].fmt(1, "ms") + " empty db",
            pairs["login"].fmt(2, "×"),
            "≤ 1.2× empty",
            ratios["login"] <= 1.2,
        ),
    ]
    sec = ctx.report.section("scale", "5. Scale", ctx.command("scale"))
    sec.add(
        "Two databases served at once by two identical services"
        f" (`{ctx.dbs['empty'].server.display_command() if ctx.dbs['empty'].server else ''}`):"
        f" **empty** (only the benchmark's own fixtures: {database.sizes_summary(empty_sizes)})"
        f" and **at scale** ({database.sizes_summary(sizes)}), each with the same fixtures."
        " Runs alternate between them; each run is a token refresh load then a login load as in"
        f" benchmarks 2 and 3 (`{loadgen.display_command(plan.connections, plan.seconds)}`),"
        f" {plan.scale_runs} runs each.",
        "",
        "Seeded server-side (`INSERT ... SELECT ... FROM generate_series`), with the three"
        " tables' indexes and constraints dropped during the load and rebuilt after it from"
        " their own definitions (`pg_get_indexdef`, `pg_get_constraintdef`), then `VACUUM"
        " (ANALYZE)`. Device sessions: 5 per account; per account one active, two past"
        " `expires_at`, one idle past the 30-day timeout, one signed out or evicted (80% over)."
        " Events: about 2 KB payloads, mostly processed, 1% orphaned with a customer id.",
        "",
    )
    sec.body += table(["Seeding step", "seconds"], [[k, f"{v:.1f}"] for k, v in timings.items()])
    sec.add("")
    rows = []
    for metric, title in (("refresh", "token refresh"), ("login", "login")):
        for kind in ("empty", "scale"):
            s = summ[kind][metric]
            rows.append(
                [
                    f"{title}, {kind}",
                    s["rps"].fmt(1),
                    s["p50"].fmt(2),
                    s["p99"].fmt(2),
                    f"{s['errors']} of {s['requests']:,}",
                ]
            )
    sec.body += table(["", "Requests/s", "p50 ms", "p99 ms", "Errors"], rows)
    sec.add(
        "",
        "p50 at scale ÷ p50 empty, per alternating pair of runs, median (min–max):"
        f" token refresh {pairs['refresh'].fmt(2, '×')}, login {pairs['login'].fmt(2, '×')}.",
        "",
        "### Query plans of the hot queries, at scale",
        "",
        "The statements are the service's own, captured from its code"
        " (`DeviceService.authenticate`, `.active_sessions`, `AccountService.find_by_email`,"
        " `WebhookService._lock_event`, ...) and run with `EXPLAIN (ANALYZE, BUFFERS)` on the"
        " database at scale, warm (the third of three executions). Both databases' plans:"
        f" [{_rel(ctx, 'query-plans.md')}]({_rel(ctx, 'query-plans.md')}).",
        "",
    )
    for p in plans_big[:4]:
        sec.add(f"**{p['name']}** ({p['ms']:.3f} ms)", "")
        sec.body += code(p["plan"])
        sec.add("")
    sec.body += table(
        ["Other hot query", "execution ms at scale", "plan (first line)"],
        [
            [p["name"], f"{p['ms']:.3f}", "`" + p["plan"].splitlines()[0].strip() + "`"]
            for p in plans_big[4:]
        ],
    )
    _write_plans(ctx, plans_big, plans_empty, label)
    ctx.notes_for("scale", sec, ratios, summ, plans_big)


def _rel(ctx: Context, name: str) -> str:
    return f"{ctx.extra_dir.name}/{name}"


def _write_plans(
    ctx: Context, big: list[dict[str, Any]], empty: list[dict[str, Any]], label: str
) -> None:
    out = [
        "# Query plans of the hot queries",
        "",
        "Generated by `python -m bench` (benchmark 5). Statements captured from the service's"
        " own code, run with `EXPLAIN (ANALYZE, BUFFERS)`, warm.",
        "",
    ]
    for title, plans in ((f"At scale ({label})", big), ("Empty database", empty)):
        out += [f"## {title}", ""]
        for p in plans:
            out += [
                f"### {p['name']}",
                "",
                "```sql",
                p["sql"].strip(),
                "```",
                "",
                f"Parameters: `{p['params']}`",
                "",
                "```",
                p["plan"],
                "```",
                "",
            ]
    ctx.extra_dir.mkdir(parents=True, exist_ok=True)
    (ctx.extra_dir / "query-plans.md").write_text("\n".join(out), encoding="utf-8")
