"""Benchmark 2: token refresh over HTTP (``POST /api/v1/entitlements/token``, Bearer session),
side by side with a bare Flask endpoint under the same gunicorn configuration.

Runs alternate between the two servers (bare, service, service, bare, ...) so that drift in the
machine's load hits both alike."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import anatomy, loadgen
from bench.loadgen import LoadResult, Request
from bench.report import table
from bench.stats import Runs, num

if TYPE_CHECKING:
    from bench.procs import Gunicorn
    from bench.runner import Context, DbState

PATH = "/api/v1/entitlements/token"
CHECK = "/api/v1/entitlements/check"
CHECK_READERS = 200  # tokens fetched before the edge-check runs (one per reader)


def service_requests(ctx: Context, state: DbState, name: str) -> Path:
    return ctx.requests_file(
        name,
        [
            Request("POST", PATH, {"Authorization": f"Bearer {tok}"})
            for tok in state.fixtures.session_tokens
        ],
    )


def bare_requests(ctx: Context, state: DbState, path: str = "/token") -> Path:
    return ctx.requests_file(
        "refresh-bare" + path.replace("/", "-"),
        [
            Request("POST", path, {"Authorization": f"Bearer {tok}"})
            for tok in state.fixtures.session_tokens
        ],
    )


def check_one(ctx: Context, server: Gunicorn, token: str) -> dict[str, Any]:
    status, body = ctx.post(server.url + PATH, headers={"Authorization": f"Bearer {token}"})
    if status != 200 or not body.get("token"):
        raise RuntimeError(f"token refresh answered {status}: {body}")
    return body


def interleaved(
    ctx: Context, targets: Sequence[tuple[str, Gunicorn, Path]], runs: int, seconds: float
) -> dict[str, list[tuple[LoadResult, dict[str, float]]]]:
    out: dict[str, list[tuple[LoadResult, dict[str, float]]]] = {n: [] for n, _, _ in targets}
    for name, server, path in targets if ctx.plan.warmup > 0 else ():
        ctx.load(server, path, seconds=ctx.plan.warmup, label=f"{name} warm-up")
    for r in range(runs):
        order = list(targets) if r % 2 == 0 else list(reversed(targets))
        for name, server, path in order:
            out[name].append(ctx.load(server, path, seconds=seconds, offset=r * 97, label=name))
    return out


def summarize(results: Sequence[tuple[LoadResult, dict[str, float]]]) -> dict[str, Any]:
    rs = [r for r, _ in results]
    return {
        "rps": Runs.of(r.rps for r in rs),
        "p50": Runs.of(r.p50_ms for r in rs),
        "p90": Runs.of(r.p90_ms for r in rs),
        "p99": Runs.of(r.p99_ms for r in rs),
        "errors": sum(r.errors for r in rs),
        "requests": sum(r.requests for r in rs),
        "wrapped": sum(r.wrapped for r in rs),
        "cpu": {
            k: Runs.of(c[k] / max(1, r.requests) * 1000 for r, c in results) for k in results[0][1]
        },
    }


def paired(
    top: Sequence[tuple[LoadResult, dict[str, float]]],
    bottom: Sequence[tuple[LoadResult, dict[str, float]]],
    attr: str,
) -> Runs:
    def value(r: LoadResult) -> float:
        return float(getattr(r, attr))

    return Runs.of(
        value(t) / value(b) for (t, _), (b, _) in zip(top, bottom, strict=True) if value(b)
    )


def load_table(named: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    for name, s in named.items():
        rows.append(
            [
                name,
                s["rps"].fmt(0),
                s["p50"].fmt(2),
                s["p90"].fmt(2),
                s["p99"].fmt(2),
                f"{s['errors']} of {s['requests']:,}",
            ]
        )
    return table(["Server", "Requests/s", "p50 ms", "p90 ms", "p99 ms", "Errors"], rows)


def cpu_table(named: dict[str, dict[str, Any]]) -> list[str]:
    keys = list(next(iter(named.values()))["cpu"])
    rows = []
    for key in keys:
        rows.append([key] + [f"{s['cpu'][key].median:.2f}" for s in named.values()])
    return table(["CPU ms per request (median of runs)"] + list(named), rows)


def run(ctx: Context) -> None:
    state = ctx.dbs["empty"]
    service = ctx.start_service("empty")
    bare = ctx.start_bare()
    check_one(ctx, service, state.fixtures.session_tokens[0])
    svc_file = service_requests(ctx, state, "refresh-empty")
    bare_file = bare_requests(ctx, state)
    floor_file = bare_requests(ctx, state, "/token-db")
    status, _ = ctx.post(
        bare.url + "/token-db",
        headers={"Authorization": f"Bearer {state.fixtures.session_tokens[0]}"},
    )
    if status != 200:
        raise RuntimeError(f"bare /token-db answered {status}")
    res = interleaved(
        ctx,
        [
            ("bare Flask", bare, bare_file),
            ("bare Flask + 1 SQL query", bare, floor_file),
            ("token refresh", service, svc_file),
        ],
        ctx.plan.runs,
        ctx.plan.seconds,
    )
    b, s = summarize(res["bare Flask"]), summarize(res["token refresh"])
    f = summarize(res["bare Flask + 1 SQL query"])
    ctx.results["refresh"] = res
    ctx.notes["refresh"] = {"bare": b, "service": s, "floor": f}
    pair_floor = paired(res["bare Flask + 1 SQL query"], res["bare Flask"], "rps")

    # Ratios per alternating pair (run i of the service over run i of the bare app, measured
    # back to back), then the median: steadier than a ratio of medians on a noisy machine.
    pair_thr = paired(res["token refresh"], res["bare Flask"], "rps")
    pair_p99 = paired(res["token refresh"], res["bare Flask"], "p99_ms")
    pair_p50 = paired(res["token refresh"], res["bare Flask"], "p50_ms")
    thr, p99 = pair_thr.median, pair_p99.median
    ctx.report.rows += [
        ctx.row(
            "2. Token refresh throughput",
            s["rps"].fmt(0, "req/s"),
            b["rps"].fmt(0, "req/s") + " bare Flask",
            pair_thr.fmt(2, "×"),
            "≥ 0.5× bare",
            thr >= 0.5,
        ),
        ctx.row(
            "2. Token refresh p50 latency",
            s["p50"].fmt(2, "ms"),
            b["p50"].fmt(2, "ms") + " bare",
            pair_p50.fmt(2, "×"),
            "—",
            None,
        ),
        ctx.row(
            "2. Token refresh p99 latency",
            s["p99"].fmt(2, "ms"),
            b["p99"].fmt(2, "ms") + " bare",
            pair_p99.fmt(2, "×"),
            "< 4× bare p99",
            p99 < 4,
        ),
        ctx.row(
            "2. Token refresh errors",
            f"{s['errors']} of {s['requests']:,}",
            "—",
            "—",
            "0",
            s["errors"] == 0,
        ),
        ctx.row(
            "2. (reference) bare Flask + one SQL query, throughput",
            f["rps"].fmt(0, "req/s"),
            b["rps"].fmt(0, "req/s") + " bare Flask",
            pair_floor.fmt(2, "×"),
            "(what one round trip costs)",
            None,
        ),
    ]
    sec = ctx.report.section("refresh", "2. Token refresh over HTTP", ctx.command("refresh"))
    sec.add(
        f"`POST {PATH}` with `Authorization: Bearer <session token>`, cycling through"
        f" {len(state.fixtures.session_tokens):,} readers (one active device session each, half"
        " of them with an active premium subscription), against `POST /token` of"
        " `bench/bare_app.py` (reads the header, returns a JSON body of the same size) and, as a"
        " reference for what touching the database at all costs, its `POST /token-db` (the same"
        " plus one indexed `SELECT` of the session by token digest: raw psycopg, autocommit).",
        f"Both under `{service.display_command()}` (service: `wsgi:app`), PostgreSQL on"
        " loopback, the load generator on the same 2 cores.",
        f"Load: `{loadgen.display_command(ctx.plan.connections, ctx.plan.seconds)}`;"
        f" {ctx.plan.warmup:g}s warm-up per server, then {ctx.plan.runs} runs per server,"
        " alternating servers. Median (min–max) over runs.",
        "",
    )
    sec.body += load_table(
        {
            "bare Flask (`bench.bare_app:app`, `POST /token`)": b,
            "bare Flask + 1 SQL query (`POST /token-db`)": f,
            "token refresh (`wsgi:app`)": s,
        }
    )
    sec.add(
        "",
        f"Ratios, service ÷ bare per alternating pair of runs, median (min–max):"
        f" throughput {pair_thr.fmt(2, '×')}, p50 {pair_p50.fmt(2, '×')}, p99"
        f" {pair_p99.fmt(2, '×')}.",
        "",
        "CPU per request, from /proc during the same runs (the whole machine has"
        f" {_cores()} cores; at saturation they are shared by gunicorn, PostgreSQL and the"
        " load generator):",
        "",
    )
    sec.body += cpu_table({"bare Flask": b, "bare + 1 query": f, "token refresh": s})
    sec.add("")
    app = anatomy.app_for(ctx, state)
    headers = {"Authorization": f"Bearer {state.fixtures.session_tokens[0]}"}
    _, first = anatomy.trace(app, "POST", PATH, headers=headers)
    status, steady = anatomy.trace(app, "POST", PATH, headers=headers)
    extra = [e for e in first if e not in steady]
    note = (
        "a reader with a premium subscription; once a minute per session the same request"
        f" also touches the session ({', '.join(f'`{e}`' for e in extra)})"
        if extra
        else "a reader with a premium subscription"
    )
    sec.body += anatomy.section_lines("token refresh", status, steady, note)
    ctx.notes["refresh_trips"] = len(steady)
    ctx.notes["refresh_events"] = steady
    ctx.notes_for("refresh", sec, thr, p99, b, s)
    edge_check(ctx, state, service, bare)


def edge_check(ctx: Context, state: DbState, service: Gunicorn, bare: Gunicorn) -> None:
    """The per-page-view path behind nginx ``auth_request``: ``GET /check`` with a reader's
    token and session, against the bare app's ``GET /check`` (reads the header, answers 204)."""
    pairs = []
    for session in state.fixtures.session_tokens[:CHECK_READERS]:
        pairs.append((check_one(ctx, service, session)["token"], session))
    svc_file = ctx.requests_file(
        "check-service",
        [
            Request(
                "GET",
                CHECK,
                {"X-Paywall-Token": t, "X-Paywall-Session": s, "X-Paywall-Access-Level": "free"},
            )
            for t, s in pairs
        ],
    )
    bare_file = ctx.requests_file(
        "check-bare", [Request("GET", "/check", {"X-Paywall-Token": t}) for t, _ in pairs]
    )
    res = interleaved(
        ctx,
        [("bare Flask GET /check", bare, bare_file), ("edge check", service, svc_file)],
        ctx.plan.runs,
        ctx.plan.seconds,
    )
    b, s = summarize(res["bare Flask GET /check"]), summarize(res["edge check"])
    ctx.results["edge_check"] = res
    thr = paired(res["edge check"], res["bare Flask GET /check"], "rps")
    p99 = paired(res["edge check"], res["bare Flask GET /check"], "p99_ms")
    ctx.report.rows += [
        ctx.row(
            "2. Edge check (`GET /entitlements/check`) throughput",
            s["rps"].fmt(0, "req/s"),
            b["rps"].fmt(0, "req/s") + " bare Flask",
            thr.fmt(2, "×"),
            "≥ 0.5× bare",
            thr.median >= 0.5,
        ),
        ctx.row(
            "2. Edge check p99 latency",
            s["p99"].fmt(2, "ms"),
            b["p99"].fmt(2, "ms") + " bare",
            p99.fmt(2, "×"),
            "—",
            None,
        ),
        ctx.row(
            "2. Edge check errors",
            f"{s['errors']} of {s['requests']:,}",
            "—",
            "—",
            "0",
            s["errors"] == 0,
        ),
    ]
    sec = ctx.report.section("edge_check", "2b. Edge check over HTTP", ctx.command("refresh"))
    sec.add(
        f"`GET {CHECK}` with `X-Paywall-Token` (a reader's Ed25519 token) and"
        f" `X-Paywall-Session` (its session), cycling through {len(pairs):,} readers, against"
        " `GET /check` of `bench/bare_app.py` (reads the header, answers 204). The check"
        " verifies the signature, the claims and the session binding and asks the process's"
        " revocation state: no database round trip for a token that is not revoked. Same"
        " gunicorn configuration, load and alternation as above.",
        "",
    )
    sec.body += load_table({"bare Flask (`GET /check`)": b, "edge check (`wsgi:app`)": s})
    sec.add(
        "",
        f"Ratios, service ÷ bare per alternating pair of runs: throughput {thr.fmt(2, '×')},"
        f" p99 {p99.fmt(2, '×')}. **{'Target met' if thr.median >= 0.5 else 'Target missed'}**"
        " (≥ 0.5× bare).",
    )


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def fmt_ratio(x: float) -> str:
    return f"{num(x, 2)}×"
