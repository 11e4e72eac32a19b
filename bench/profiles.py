"""Profiles of the service under load: py-spy samples every gunicorn worker while wrk drives one
endpoint (unmeasured runs), and the collapsed stacks are summarised in the report: where the
workers' CPU goes by library, and the service's own functions by inclusive time. The request
stacks are written next to the report (gzipped collapsed stacks for flamegraph.pl or
https://www.speedscope.app); py-spy's raw output stays in bench/results/."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from bench.procs import BIN
from bench.report import table

if TYPE_CHECKING:
    from bench.procs import Gunicorn
    from bench.runner import Context

_LINE = re.compile(r":\d+\)$")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")

# First match wins; matched against the frame's file path.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("argon2 (password hash)", ("argon2/",)),
    ("psycopg (PostgreSQL driver)", ("psycopg/", "psycopg_binary/")),
    ("SQLAlchemy (ORM, core, pool)", ("sqlalchemy/",)),
    ("Stripe client + requests/urllib3", ("stripe/", "requests/", "urllib3/")),
    (
        "marshmallow / flask-smorest / webargs / apispec",
        ("marshmallow/", "flask_smorest/", "webargs/", "apispec/"),
    ),
    ("Flask-Limiter / limits", ("flask_limiter/", "limits/")),
    ("Flask-Login", ("flask_login/",)),
    ("Flask-WTF (CSRF)", ("flask_wtf/", "wtforms/")),
    ("Flask / Werkzeug / Jinja", ("flask/", "werkzeug/", "jinja2/", "click/")),
    ("logging (stdlib + python-json-logger)", ("logging/", "pythonjsonlogger/")),
    (
        "itsdangerous / hmac / hashlib / zlib / base64",
        ("itsdangerous/", "hmac.py", "hashlib.py", "base64.py"),
    ),
    ("email-validator / idna", ("email_validator/", "idna/")),
    ("json (stdlib)", ("json/",)),
    ("gunicorn (request parsing, sockets)", ("gunicorn/", "socket.py", "selectors.py")),
    ("paywall (the service's own code)", ("paywall/",)),
    (
        "uuid / datetime / dataclasses / other stdlib",
        (
            "uuid.py",
            "datetime.py",
            "dataclasses.py",
            "_strptime.py",
            "contextlib.py",
            "functools.py",
            "typing.py",
            "threading.py",
            "enum.py",
            "re/",
            "copy.py",
            "abc.py",
            "inspect.py",
            "weakref.py",
            "collections/",
            "email/",
            "http/",
            "urllib/",
        ),
    ),
]


def category(path: str) -> str:
    for name, needles in CATEGORIES:
        if any(n in path for n in needles):
            return name
    return "other"


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """[(frames root→leaf as (function, file)), samples] for worker stacks only."""
    stacks = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        head, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = []
        for part in head.split(";"):
            if part.startswith("process ") or part.startswith("thread "):
                continue
            m = FRAME.match(part)
            frames.append((m["func"], m["file"]) if m else (part, ""))
        # Only request handling: the worker's handle() path (not the master's sleep, not the
        # worker's wait for a connection).
        if not any(
            f == "SyncWorker.handle_request" or f.endswith("handle_request") for f, _ in frames
        ):
            continue
        stacks.append((frames, int(count)))
    return stacks


def summarize(stacks: list[tuple[list[tuple[str, str]], int]]) -> dict[str, Counter[str]]:
    by_self: Counter[str] = Counter()
    inclusive_cat: Counter[str] = Counter()
    paywall_incl: Counter[str] = Counter()
    total = 0
    for frames, n in stacks:
        total += n
        leaf_cat = "other"
        for _func, file in reversed(frames):  # the innermost frame with a known category
            c = category(file)
            if c != "other":
                leaf_cat = c
                break
        by_self[leaf_cat] += n
        seen_cat = {category(file) for _, file in frames}
        for c in seen_cat:
            inclusive_cat[c] += n
        seen_fn = {f"{func} ({_short(file)})" for func, file in frames if "paywall/" in file}
        for f in seen_fn:
            paywall_incl[f] += n
    return {
        "self": by_self,
        "inclusive": inclusive_cat,
        "paywall": paywall_incl,
        "total": Counter({"samples": total}),
    }


def _short(file: str) -> str:
    i = file.find("paywall/")
    return file[i:] if i >= 0 else file


def compact(raw: Path, out: Path) -> None:
    """The request stacks of a raw py-spy file, from ``handle_request`` down, both workers
    merged, gzipped: small enough to keep next to the report (``zcat | flamegraph.pl``)."""
    merged: Counter[str] = Counter()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        head, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in head.split(";") if not f.startswith(("process ", "thread "))]
        start = next((i for i, f in enumerate(frames) if "handle_request (" in f), None)
        if start is None:
            continue
        # Without line numbers: stacks through the same functions merge (a third the size).
        merged[";".join(_LINE.sub(")", f) for f in frames[start:])] += int(count)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{stack} {n}\n" for stack, n in merged.most_common())
    # mtime=0: the same stacks give the same bytes
    out.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def record(ctx: Context, name: str, server: Gunicorn, requests_file: Path, gil: bool) -> Path:
    """Sample every worker of ``server`` while wrk loads it; returns the raw stacks file.
    ``gil``: only samples holding the GIL (Python CPU; C code that releases the GIL, such as
    argon2 and psycopg's wait for the server, is left out)."""
    pyspy = BIN / "py-spy"
    if not pyspy.exists() and not shutil.which("py-spy"):
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    assert server.proc is not None
    stem = f"{name}-{'cpu' if gil else 'wall'}"
    out = ctx.results_dir / "profiles" / f"{stem}.raw.txt"  # everything py-spy saw
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds = ctx.plan.profile_seconds
    spy = subprocess.Popen(  # noqa: S603
        [
            str(pyspy if pyspy.exists() else "py-spy"),
            "record",
            "--pid",
            str(server.proc.pid),
            "--subprocesses",
            "--rate",
            "250",
            "--duration",
            str(int(seconds + 1)),
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(0.5)
    ctx.load(server, requests_file, seconds=seconds, label=f"profile {name}")
    try:
        log_text, _ = spy.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        spy.kill()
        log_text, _ = spy.communicate()
    if spy.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed: {log_text.strip()[-300:]}")
    compact(out, ctx.extra_dir / "profiles" / f"{stem}.collapsed.txt.gz")
    return out


def run(ctx: Context) -> None:
    from bench import login, refresh

    state = ctx.dbs["empty"]
    server = ctx.start_service("empty")
    targets = [
        ("refresh", "token refresh", refresh.service_requests(ctx, state, "refresh-empty")),
        ("login", "login", login.requests_for(ctx, state, "login-empty")),
    ]
    wh = ctx.notes.get("webhook_stream")
    if wh is not None:
        n = max(300, int(ctx.plan.profile_seconds * 400))
        targets.append(
            ("webhook-refetch", "webhook with re-fetch", wh.file("refetch", n, "webhook-profile"))
        )
    sec = ctx.report.section(
        "profiles", "Profiles of the service under load", ctx.command("profiles")
    )
    where = (
        ctx.extra_dir.relative_to(ctx.out.parent)
        if ctx.extra_dir.is_relative_to(ctx.out.parent)
        else ctx.extra_dir
    )
    sec.add(
        "py-spy samples every service worker (`py-spy record --subprocesses --rate 250"
        " --nonblocking --format raw`) during unmeasured"
        f" {ctx.plan.profile_seconds:g}s load runs of each endpoint (same load as the"
        " benchmarks), twice: **wall** (every sample of a busy worker; py-spy counts a worker"
        " blocked in psycopg's wait for PostgreSQL as busy, so psycopg's share there is mostly"
        " the database round trips) and **CPU** (`--gil`: only samples holding the GIL, i.e."
        " Python running; C code that releases the GIL, argon2 and the waits, is left out)."
        " Only stacks inside a request (`handle_request`) count. *Self* = the innermost frame"
        " from a known library. The request stacks (collapsed format, line numbers dropped,"
        f" gzipped) are in `{where}/profiles/`: `zcat` one into `flamegraph.pl`, or gunzip it"
        " and open it in speedscope.app.",
        "",
    )
    for stale in (ctx.extra_dir / "profiles").glob("*.collapsed.txt.gz"):
        stale.unlink()  # only this run's profiles next to this run's report
    results = {}
    for key, title, path in targets:
        wall = summarize(parse(record(ctx, key, server, path, gil=False)))
        cpu = summarize(parse(record(ctx, key, server, path, gil=True)))
        results[key] = {"wall": wall, "cpu": cpu}
        tw = wall["total"]["samples"] or 1
        tc = cpu["total"]["samples"] or 1
        sec.add(
            f"### {title}", "", f"{tw:,} wall samples and {tc:,} CPU samples inside requests.", ""
        )
        cats = sorted(
            set(wall["self"]) | set(cpu["self"]),
            key=lambda c: -(wall["self"].get(c, 0) / tw + cpu["self"].get(c, 0) / tc),
        )
        sec.body += table(
            ["Library (self)", "wall %", "CPU %"],
            [
                [
                    c,
                    f"{wall['self'].get(c, 0) / tw * 100:.1f}",
                    f"{cpu['self'].get(c, 0) / tc * 100:.1f}",
                ]
                for c in cats
                if wall["self"].get(c, 0) / tw > 0.003 or cpu["self"].get(c, 0) / tc > 0.003
            ],
        )
        sec.add("", "The service's own functions, inclusive (top 15 by wall):", "")
        sec.body += table(
            ["Function", "wall %", "CPU %"],
            [
                [f"`{f}`", f"{n / tw * 100:.1f}", f"{cpu['paywall'].get(f, 0) / tc * 100:.1f}"]
                for f, n in wall["paywall"].most_common(15)
            ],
        )
        sec.add("")
    ctx.results["profiles"] = {
        k: {m: {kk: dict(vv) for kk, vv in s.items()} for m, s in v.items()}
        for k, v in results.items()
    }
    ctx.notes["profiles"] = results
    ctx.notes_for("profiles", sec, results)
