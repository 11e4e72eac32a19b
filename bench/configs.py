"""Why the gunicorn configuration: the token refresh and login loads, and worker memory, under a
few candidate configurations on the same database, runs alternating between them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench import login, refresh
from bench.procs import Gunicorn, GunicornConfig, free_port
from bench.report import table
from bench.runner import GUNICORN

if TYPE_CHECKING:
    from bench.runner import Context

CANDIDATES = [GUNICORN, GunicornConfig(4, 1, "sync"), GunicornConfig(2, 4, "gthread")]


def run(ctx: Context) -> None:
    state = ctx.dbs["empty"]
    plan = ctx.plan
    servers: list[tuple[GunicornConfig, Gunicorn]] = []
    runs = max(1, min(3, plan.runs))
    seconds = max(1.0, plan.seconds * 0.6)
    try:
        for cfg in CANDIDATES:
            port = free_port()
            servers.append(
                (
                    cfg,
                    Gunicorn(
                        f"config {cfg.describe()}",
                        "wsgi:app",
                        ctx.service_env(state.url, port),
                        cfg,
                        ctx.logs / "configs.log",
                        port=port,
                        dbname=state.name,
                    ).start(),
                )
            )
        rf = refresh.service_requests(ctx, state, "refresh-empty")
        lf = login.requests_for(ctx, state, "login-empty")
        for _, server in servers if plan.warmup > 0 else ():
            ctx.load(server, rf, seconds=plan.warmup, label="config warm-up")
            login.login_run(
                ctx,
                state,
                lf,
                connections=plan.connections,
                seconds=plan.warmup,
                label="config warm-up",
                server=server,
            )
        res: dict[str, dict[str, list[Any]]] = {
            c.describe(): {"refresh": [], "login": []} for c, _ in servers
        }
        for r in range(runs):
            for cfg, server in servers if r % 2 == 0 else list(reversed(servers)):
                d = res[cfg.describe()]
                d["refresh"].append(
                    ctx.load(
                        server,
                        rf,
                        seconds=seconds,
                        offset=r * 97,
                        label=f"{cfg.describe()} refresh",
                    )
                )
                d["login"].append(
                    login.login_run(
                        ctx,
                        state,
                        lf,
                        connections=plan.connections,
                        seconds=seconds,
                        label="config login",
                        server=server,
                    )
                )
        memory = {c.describe(): max(m.rss for m in ctx.worker_memory(s)) for c, s in servers}
    finally:
        for _, server in servers:
            server.stop()
    rows = []
    for cfg, _ in servers:
        d = res[cfg.describe()]
        rf_s, lg = refresh.summarize(d["refresh"]), refresh.summarize(d["login"])
        rows.append(
            [
                f"`{cfg.describe()}`" + (" (chosen)" if cfg == GUNICORN else ""),
                rf_s["rps"].fmt(0),
                rf_s["p99"].fmt(1),
                lg["rps"].fmt(1),
                lg["p99"].fmt(0),
                f"{memory[cfg.describe()]:.0f}",
            ]
        )
    ctx.results["configs"] = res
    sec = ctx.report.section(
        "configs", "Choice of the gunicorn configuration", ctx.command("configs")
    )
    sec.add(
        "The same service and database under each candidate, started side by side, runs"
        f" alternating between them ({runs} runs of {seconds:g}s per load and candidate,"
        f" {plan.connections} connections): one sync process per core against more processes"
        " and against threads.",
        "",
    )
    sec.body += table(
        [
            "Configuration",
            "refresh req/s",
            "refresh p99 ms",
            "logins/s",
            "login p99 ms",
            "largest worker RSS MiB (after the runs)",
        ],
        rows,
    )
    sec.add(
        "",
        "Chosen: `--workers 2 --threads 1 --worker-class sync`, one process per core. The work"
        " is CPU-bound Python (SQLAlchemy, Flask, argon2, which holds the core for the whole"
        " hash) with short loopback round trips to PostgreSQL, so on 2 cores more processes"
        " only add context switches, and threads in one process share one GIL while each"
        " thread keeps its own database connection and buffers (the gthread workers are the"
        " largest). Sync workers need a proxy in front of them for slow clients (nginx"
        " buffering), as gunicorn's documentation says.",
    )
