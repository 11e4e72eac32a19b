"""Benchmark 3: login (``POST /api/v1/sessions``): logins a second per core and p99 under load,
and the cost outside the password hash: a one-connection login's median latency minus one argon2
verify at the same parameters, timed in this process between the login runs."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench import anatomy, database, loadgen
from bench.loadgen import Request
from bench.refresh import cpu_table, load_table, summarize
from bench.report import table
from bench.stats import Runs

if TYPE_CHECKING:
    from bench.loadgen import LoadResult
    from bench.procs import Gunicorn
    from bench.runner import Context, DbState

PATH = "/api/v1/sessions"


def requests_for(ctx: Context, state: DbState, name: str) -> Path:
    return ctx.requests_file(
        name,
        [
            Request(
                "POST",
                PATH,
                {"Content-Type": "application/json", "User-Agent": "bench/1.0"},
                json.dumps(
                    {"email": e, "password": database.PASSWORD, "device_name": "Bench device"}
                ),
            )
            for e in state.fixtures.login_emails
        ],
    )


def argon2_ms(samples: int) -> float:
    """Median milliseconds of one verify with the service's own hasher at its defaults."""
    from paywall.accounts.passwords import PasswordHashing
    from paywall.config import DEFAULTS

    hashing = PasswordHashing(
        DEFAULTS["ARGON2_TIME_COST"], DEFAULTS["ARGON2_MEMORY_COST"], DEFAULTS["ARGON2_PARALLELISM"]
    )
    stored = hashing.hash(database.PASSWORD)
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        ok = hashing.verify(stored, database.PASSWORD)
        times.append((time.perf_counter() - t) * 1000)
        if not ok:
            raise RuntimeError("argon2 verify failed")
    return statistics.median(times)


def login_run(
    ctx: Context,
    state: DbState,
    path: Path,
    *,
    connections: int,
    seconds: float,
    label: str,
    server: Gunicorn | None = None,
) -> tuple[LoadResult, dict[str, float]]:
    """One login load run, continuing through the accounts where the last run stopped (so
    each login is to an account with few sessions)."""
    server = server or state.server
    assert server is not None
    res = ctx.load(
        server,
        path,
        connections=connections,
        seconds=seconds,
        offset=state.login_offset,
        label=label,
    )
    state.login_offset += res[0].requests + 1
    return res


def run(ctx: Context) -> None:
    state = ctx.dbs["empty"]
    server = ctx.start_service("empty")
    status, body = ctx.post(
        server.url + PATH, {"email": state.fixtures.login_emails[-1], "password": database.PASSWORD}
    )
    if status != 201 or not body.get("token"):
        raise RuntimeError(f"login answered {status}: {body}")
    path = requests_for(ctx, state, "login-empty")
    plan = ctx.plan
    cores = os.cpu_count() or 1

    # Overhead outside the hash: one connection, so nothing queues.
    if plan.warmup > 0:
        login_run(ctx, state, path, connections=1, seconds=plan.warmup, label="login warm-up")
    hash_ms, seq = [], []
    for _ in range(plan.runs):
        hash_ms.append(argon2_ms(plan.argon2_samples))
        seq.append(
            login_run(
                ctx,
                state,
                path,
                connections=1,
                seconds=plan.login_seq_seconds,
                label="login (1 connection)",
            )
        )
    seq_p50 = Runs.of(r.p50_ms for r, _ in seq)
    h = Runs.of(hash_ms)
    overhead = Runs.of(r.p50_ms - m for (r, _), m in zip(seq, hash_ms, strict=True))

    # Throughput under load.
    loaded = [
        login_run(
            ctx,
            state,
            path,
            connections=plan.connections,
            seconds=plan.seconds,
            label="login (loaded)",
        )
        for _ in range(plan.runs)
    ]
    s = summarize(loaded)
    seq_s = summarize(seq)
    per_core = Runs.of(r.rps / cores for r, _ in loaded)
    hash_per_core = 1000 / h.median
    ctx.results["login"] = {"argon2_ms": hash_ms, "sequential": seq, "loaded": loaded}
    ctx.notes["login"] = {"loaded": s, "sequential": seq_s, "argon2": h, "overhead": overhead}

    ctx.report.rows += [
        ctx.row(
            "3. Logins a second per core (argon2id m=19456 t=2 p=1)",
            per_core.fmt(1, "/s/core"),
            f"{hash_per_core:.1f} argon2 verifies/s/core",
            f"{per_core.median / hash_per_core:.2f}×",
            "≥ 15 /s/core",
            per_core.median >= 15,
        ),
        ctx.row(
            "3. Login p99 under load",
            s["p99"].fmt(1, "ms"),
            h.fmt(1, "ms") + " one verify",
            f"{s['p99'].median / h.median:.1f}×",
            "—",
            None,
        ),
        ctx.row(
            "3. Login cost outside the hash",
            overhead.fmt(2, "ms"),
            f"{seq_p50.median:.1f} ms login p50 − {h.median:.1f} ms verify",
            "—",
            "< 10 ms",
            overhead.median < 10,
        ),
        ctx.row(
            "3. Login errors",
            f"{s['errors'] + seq_s['errors']} of {s['requests'] + seq_s['requests']:,}",
            "—",
            "—",
            "0",
            s["errors"] + seq_s["errors"] == 0,
        ),
    ]
    sec = ctx.report.section("login", "3. Login", ctx.command("login"))
    sec.add(
        f'`POST {PATH}` with `{{"email", "password", "device_name"}}`, cycling through'
        f" {len(state.fixtures.login_emails):,} accounts whose stored hash uses the service's"
        " default argon2id parameters (m=19456 KiB, t=2, p=1), so no login rehashes. Rate"
        " limits off; device policy `evict_lru` (the accounts rotate, so a login rarely"
        " evicts).",
        f"Same service and gunicorn configuration as benchmark 2 (`{server.display_command()}`).",
        "",
        f"**Cost outside the hash.** {plan.runs} rounds of: {plan.argon2_samples} argon2"
        " verifies in the harness process with the service's own `PasswordHashing` (median),"
        f" then `{loadgen.display_command(1, plan.login_seq_seconds)}` (one connection: the"
        " login's own latency, nothing queued). Overhead = login p50 − verify median of the"
        " same round.",
        "",
    )
    sec.body += table(
        ["", "median (min–max)"],
        [
            ["one argon2id verify (harness)", h.fmt(2, "ms")],
            ["login p50, one connection", seq_p50.fmt(2, "ms")],
            ["login p99, one connection", seq_s["p99"].fmt(2, "ms")],
            ["logins/s, one connection", seq_s["rps"].fmt(1)],
            ["**overhead outside the hash** (p50 − verify)", overhead.fmt(2, "ms")],
        ],
    )
    sec.add(
        "",
        f"**Under load.** `{loadgen.display_command(plan.connections, plan.seconds)}`,"
        f" {plan.runs} runs. {cores} cores; logins/s per core = logins/s ÷ {cores}.",
        "",
    )
    sec.body += load_table({"login (loaded)": s})
    sec.add(
        "",
        f"Logins per second per core: {per_core.fmt(1)}; the hash alone allows"
        f" {hash_per_core:.1f} per core.",
        "",
    )
    sec.body += cpu_table({"login, 1 connection": seq_s, "login, loaded": s})
    sec.add("")
    status, events = anatomy.trace(
        anatomy.app_for(ctx, state),
        "POST",
        PATH,
        json={
            "email": state.fixtures.login_emails[len(state.fixtures.login_emails) // 2],
            "password": database.PASSWORD,
            "device_name": "Bench device",
        },
    )
    sec.body += anatomy.section_lines(
        "login", status, events, "an account without a subscription, below its device cap"
    )
    ctx.notes["login_events"] = events
    ctx.notes_for("login", sec, per_core, overhead, s, h)
