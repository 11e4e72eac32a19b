"""``python -m bench [--smoke] [--only KEY ...]``"""

from __future__ import annotations

import argparse
import json
import signal
import time
import traceback
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from bench import database, loadgen, machine
from bench.procs import ROOT
from bench.runner import FULL, GUNICORN, SMOKE, Context, log

KEYS = (
    "tokens",
    "refresh",
    "login",
    "webhooks",
    "catalogue",
    "queue",
    "scale",
    "memory",
    "configs",
    "profiles",
    "meter",
    "revocation",
    "notify",
)
IN_PROCESS = ("tokens", "meter", "notify")  # no service under gunicorn needed
HTTP = tuple(k for k in KEYS if k not in IN_PROCESS)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny run that only proves the harness works (CI); writes"
        " bench/results/smoke/benchmarks.md",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=KEYS,
        metavar="KEY",
        help=f"run only these benchmarks ({', '.join(KEYS)}); writes"
        " bench/results/partial/benchmarks.md unless --out is given",
    )
    p.add_argument("--out", type=Path, help="where to write the report")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    p.add_argument(
        "--keep-db",
        action="store_true",
        help="keep the benchmark databases afterwards (default: drop them)",
    )
    return p.parse_args(argv)


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # run the finally blocks: stop the servers


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = parse(argv)
    started = time.monotonic()
    plan = SMOKE if args.smoke else FULL
    only = set(args.only or ())
    if "memory" in only:  # memory after the load runs needs the load runs
        only |= {"refresh", "login", "webhooks"}
    selected = [k for k in KEYS if not only or k in only]
    if plan.smoke and not only:  # the smoke run skips the two slowest extras
        selected = [k for k in selected if k not in ("profiles", "configs")]
    if args.no_profile:
        selected = [k for k in selected if k != "profiles"]
    if args.out:
        out = args.out
    elif plan.smoke:
        out = ROOT / "bench" / "results" / "smoke" / "benchmarks.md"
    elif only:
        out = ROOT / "bench" / "results" / "partial" / "benchmarks.md"
    else:
        out = ROOT / "docs" / "benchmarks.md"
    ctx = Context(plan, out, only)
    lock = _lock(ctx.results_dir / ".lock")
    ctx.clean()
    ctx.report.machine = machine.describe(database.pg_version())
    failures: list[str] = []

    def attempt(key: str, fn: Any) -> None:
        log(f"benchmark {key} ...")
        t = time.monotonic()
        try:
            fn(ctx)
        except Exception as exc:  # noqa: BLE001 - report it, run the others, exit non-zero
            traceback.print_exc()
            failures.append(f"`{key}`: {type(exc).__name__}: {exc}"[:2000])
        log(f"benchmark {key} done in {time.monotonic() - t:.0f}s")

    try:
        if "tokens" in selected:  # first, while nothing else runs
            from bench import tokens

            attempt("tokens", tokens.run)
        if any(k in selected for k in HTTP):
            log("setting up: Stripe stand-in, database, migrations, catalogue, fixtures")
            ctx.start_standin()
            ctx.prepare_db("empty")
            from bench import login, refresh, webhooks

            for key, mod in (("refresh", refresh), ("login", login), ("webhooks", webhooks)):
                if key in selected:
                    attempt(key, mod.run)
            empty = ctx.dbs["empty"]
            if empty.server is not None:
                empty.memory["after benchmarks 2–4"] = ctx.worker_memory(empty.server)
            if "catalogue" in selected:
                from bench import catalogue

                attempt("catalogue", catalogue.run)
            if "queue" in selected:
                from bench import jobs

                attempt("queue", jobs.run)
            if "scale" in selected:
                from bench import scale

                attempt("scale", scale.run)
            if "configs" in selected:
                from bench import configs

                attempt("configs", configs.run)
            if "profiles" in selected:
                from bench import profiles

                attempt("profiles", profiles.run)
            if "memory" in selected:
                from bench import memory

                attempt("memory", memory.run)
            if "revocation" in selected:
                from bench import revocation

                attempt("revocation", revocation.run)
        if "meter" in selected:  # in process, on databases of its own
            from bench import meter

            attempt("meter", meter.run)
        if "notify" in selected:  # its own database, workers and push stand-in
            from bench import notify

            attempt("notify", notify.run)
    finally:
        ctx.stop()
        if not args.keep_db:
            for name in [state.name for state in ctx.dbs.values()] + ctx.extra_dbs:
                try:
                    database.drop(name)
                except Exception:  # noqa: BLE001
                    traceback.print_exc()

    lock.close()
    elapsed = time.monotonic() - started
    ctx.report.failures = failures + [f"harness warning: {p}" for p in ctx.sanity]
    ctx.report.intro = intro(ctx, elapsed, args)
    ctx.report.write(out)
    dump(ctx, ctx.results_dir / "results.json")
    log(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} in {elapsed:.0f}s")
    problems = failures + ctx.sanity
    for p in problems:
        log(f"PROBLEM: {p}")
    if failures or (plan.smoke and ctx.sanity):
        return 1
    return 0


def _lock(path: Path) -> Any:
    """One run per mode at a time: two runs would drop each other's database."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another `python -m bench` run holds {path}; waiting for it to finish")
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def intro(ctx: Context, elapsed: float, args: argparse.Namespace) -> list[str]:
    cmd = "make bench-smoke" if ctx.plan.smoke else "make bench"
    if ctx.only:
        cmd = ".venv/bin/python -m bench --only " + " ".join(sorted(ctx.only))
    lines = [
        f"Generated by `{cmd}` on {time.strftime('%Y-%m-%d %H:%M %Z')}; the run took"
        f" {elapsed / 60:.1f} minutes. Every number below comes from that one run: rerun the"
        " same command to reproduce them (each section names the command for that benchmark"
        " alone). Results are ratios against a baseline measured in the same run, as the median"
        " of several runs with the spread (min–max) in parentheses. The machine is shared and"
        " noisy: compare ratios, not absolute numbers, across runs.",
        "",
        f"The service runs under `gunicorn {GUNICORN.describe()} wsgi:app` on loopback, with"
        f" PostgreSQL on loopback and `{loadgen.tool_name()}` as the load generator, all on the"
        " same cores. Settings:",
        "",
    ]
    lines += [f"- {s}" for s in ctx.service_settings()]
    lines += [
        "",
        "Why this gunicorn configuration: see"
        " [its section](#choice-of-the-gunicorn-configuration).",
    ]
    if ctx.plan.smoke:
        lines = [
            "> **Smoke run**: tiny durations and data, only proves the harness works."
            " The numbers mean nothing.",
            "",
        ] + lines
    return lines


def dump(ctx: Context, path: Path) -> None:
    def enc(o: Any) -> Any:
        if is_dataclass(o) and not isinstance(o, type):
            d = asdict(o)
            if hasattr(o, "rps"):
                d["rps"] = o.rps
            return d
        if hasattr(o, "values") and hasattr(o, "median"):
            return {"median": o.median, "values": list(o.values)}
        return str(o)

    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ctx.results, default=enc, indent=1), encoding="utf-8")
