"""Revocation latency (issue 9 §5): from the response that ended a session to (a) a frontend's
watcher holding the revocation (feed delivery) and (b) the news site no longer serving premium
text; and the memory long polls cost the service."""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

import requests

from bench.procs import Gunicorn, GunicornConfig, free_port, memory_of
from bench.report import table
from bench.stats import percentile

if TYPE_CHECKING:
    from bench.runner import Context

FEED_CONFIG = GunicornConfig(workers=2, threads=16, worker_class="gthread")
TARGET_PAGE_P99 = 2.0
TARGET_FEED_P99 = 1.0
MEMORY_TARGET_MIB = 150
FRONTENDS = 10_000


def run(ctx: Context) -> None:
    state = ctx.prepare_db("empty")
    key = secrets.token_urlsafe(32)
    port = free_port()
    env = ctx.service_env(state.url, port)
    env["PAYWALL_PUBLISHER_API_KEYS"] = json.dumps([key])
    service = Gunicorn(
        "service-revocation",
        "wsgi:app",
        env,
        FEED_CONFIG,
        ctx.logs / "service-revocation.log",
        port=port,
        dbname=state.name,
    ).start()
    site = None
    try:
        site = _site(ctx, service.url, key)
        trials = 50 if not ctx.plan.smoke else 4
        premium = state.fixtures.session_tokens[0::2]  # even readers subscribe (fixtures)
        if len(premium) < trials:
            raise RuntimeError(f"need {trials} premium readers, have {len(premium)}")
        delivery, page = _trials(service.url, site[1], key, premium[:trials])
        polls = 1000 if not ctx.plan.smoke else 50
        mem = _long_poll_memory(ctx, state, key, polls)
        frontends = FRONTENDS if not ctx.plan.smoke else 200
        asynced = _feed_server(ctx, state, key, frontends, service.url, premium[trials])
    finally:
        if site is not None:
            site[0].shutdown()
            watcher = site[0].app.extensions.get("revocation_watcher")
            if watcher is not None:
                watcher.stop()
        service.stop()
    _report(ctx, delivery, page, mem, polls, asynced, frontends)


def _site(ctx: Context, service_url: str, key: str) -> tuple[Any, str]:
    """The news site in this process (werkzeug, threaded), following the feed."""
    import logging

    from werkzeug.serving import make_server

    from article_site import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per page view otherwise

    port = free_port()
    app = create_app(
        {
            "PAYWALL_URL": service_url,
            "SITE_URL": f"http://127.0.0.1:{port}",
            "ENTITLEMENT_SIGNING_KEYS": [ctx.entitlement_key],
            "SECRET_KEY": secrets.token_hex(32),
            "PUBLISHER_KEY": key,
            "TESTING": True,
        }
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    watcher = app.extensions["revocation_watcher"]
    if not watcher.wait_synced(30):
        raise RuntimeError("the site's watcher never reached the feed")
    return server, f"http://127.0.0.1:{port}"


def _article(site_url: str) -> str:
    from article_site.content import articles

    slug = next(iter(articles()))
    return f"{site_url}/news/{slug}"


def _premium_fragment() -> str:
    from article_site.content import articles

    article = next(iter(articles().values()))
    return str(article.premium[0])[10:60]  # as tests/functional/test_article_site.py


def _trials(
    service_url: str, site_url: str, key: str, sessions: list[str]
) -> tuple[list[float], list[float]]:
    """Per trial: a premium reader's page shows premium text; its session is signed out; time
    until a separate watcher holds the revocation, and until the site serves the teaser."""
    from paywall.entitlements.watcher import RevocationWatcher

    arrived: dict[str, float] = {}
    watcher = RevocationWatcher(
        service_url,
        key,
        wait=25,
        on_revocation=lambda e: arrived.setdefault(str(e.get("sid")), time.monotonic()),
    ).start()
    if not watcher.wait_synced(30):
        raise RuntimeError("the watcher never reached the feed")
    url, fragment = _article(site_url), _premium_fragment()
    delivery: list[float] = []
    page: list[float] = []
    for raw in sessions:
        reader = requests.Session()
        reader.cookies.set("paywall_session", raw, domain="127.0.0.1")
        if fragment not in html.unescape(reader.get(url, timeout=10).text):
            raise RuntimeError("a premium reader's page has no premium text")
        bearer = {"Authorization": f"Bearer {raw}"}
        sid = requests.get(service_url + "/api/v1/sessions", headers=bearer, timeout=10).json()
        sid = next(s["id"] for s in sid["sessions"] if s["current"])
        answer = requests.delete(
            service_url + "/api/v1/sessions/current", headers=bearer, timeout=10
        )
        done = time.monotonic()
        if answer.status_code != 204:
            raise RuntimeError(f"sign-out answered {answer.status_code}")
        while fragment in html.unescape(reader.get(url, timeout=10).text):
            if time.monotonic() - done > 60:
                raise RuntimeError("premium text still served 60 s after the sign-out")
            time.sleep(0.005)
        page.append(time.monotonic() - done)
        deadline = time.monotonic() + 60
        while sid not in arrived and time.monotonic() < deadline:
            time.sleep(0.002)
        if sid not in arrived:
            raise RuntimeError("the watcher never received the revocation")
        delivery.append(max(0.0, arrived[sid] - done))
    watcher.stop()
    return delivery, page


def _long_poll_memory(ctx: Context, state: Any, key: str, polls: int) -> dict[str, float]:
    """One gthread worker with a thread per poll; ``polls`` long polls held open at once."""
    port = free_port()
    env = ctx.service_env(state.url, port)
    env["PAYWALL_PUBLISHER_API_KEYS"] = json.dumps([key])
    config = GunicornConfig(workers=1, threads=polls + 4, worker_class="gthread")
    server = Gunicorn(
        "service-longpoll",
        "wsgi:app",
        env,
        config,
        ctx.logs / "service-longpoll.log",
        port=port,
        dbname=state.name,
    ).start()
    try:
        [pid] = server.worker_pids()[:1]
        cursor = requests.get(
            server.url + "/api/v1/entitlements/revocations",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ).json()["cursor"]
        time.sleep(0.5)
        before = memory_of(pid).rss
        during = asyncio.run(_hold(port, key, cursor, polls, pid))
        return {"before": before, "during": during}
    finally:
        server.stop()


async def _hold(port: int, key: str, cursor: str, polls: int, pid: int) -> float:
    """Open ``polls`` long polls at once, read the worker's RSS while they wait, close them."""
    request = (
        f"GET /api/v1/entitlements/revocations?after={cursor}&wait=30 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    ).encode()
    writers = []
    try:
        for _ in range(polls):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            writers.append(writer)
        await asyncio.sleep(3.0)  # every poll accepted and waiting in the worker
        return memory_of(pid).rss
    finally:
        for writer in writers:
            writer.close()


def _feed_server(
    ctx: Context, state: Any, key: str, polls: int, service_url: str, session: str
) -> dict[str, float]:
    """``python -m paywall.entitlements.feed_server`` holding ``polls`` long polls: its RSS
    before and while they wait, and how long until every one has the next revocation."""
    import subprocess
    import sys

    from bench.procs import ROOT, wait_http

    port = free_port()
    env = ctx.service_env(state.url, port)
    env["PAYWALL_PUBLISHER_API_KEYS"] = json.dumps([key])
    log = (ctx.logs / "feed-server.log").open("ab")
    proc = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "paywall.entitlements.feed_server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        url = f"http://127.0.0.1:{port}/api/v1/entitlements/revocations"
        auth = {"Authorization": f"Bearer {key}"}
        cursor = requests.get(url, headers=auth, timeout=10).json()["cursor"]
        time.sleep(0.5)
        before = memory_of(proc.pid).rss
        return asyncio.run(
            _fan_out(port, key, cursor, polls, proc.pid, before, service_url, session)
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


async def _fan_out(
    port: int,
    key: str,
    cursor: str,
    polls: int,
    pid: int,
    before: float,
    service_url: str,
    session: str,
) -> dict[str, float]:
    request = (
        f"GET /api/v1/entitlements/revocations?after={cursor}&wait=30 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    ).encode()
    conns = []
    try:
        for _ in range(polls):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            conns.append((reader, writer))
        waiting = 0
        for _ in range(100):  # until the server counts every poll as waiting
            await asyncio.sleep(0.2)
            health = await asyncio.to_thread(
                requests.get, f"http://127.0.0.1:{port}/healthz", timeout=10
            )
            waiting = int(health.json()["waiting"])
            if waiting >= polls:
                break
        during = memory_of(pid).rss
        bearer = {"Authorization": f"Bearer {session}"}
        answer = await asyncio.to_thread(
            requests.delete, service_url + "/api/v1/sessions/current", headers=bearer, timeout=10
        )
        if answer.status_code != 204:
            raise RuntimeError(f"sign-out answered {answer.status_code}: {answer.text[:300]}")
        signed_out = time.monotonic()
        bodies = await asyncio.gather(*(r.read() for r, _w in conns))
        all_answered = time.monotonic() - signed_out
        delivered = sum(1 for b in bodies if b"session.ended" in b)
        return {
            "before": before,
            "during": during,
            "waiting": float(waiting),
            "delivered": float(delivered),
            "all_answered_s": all_answered,
        }
    finally:
        for _r, writer in conns:
            writer.close()


def _report(
    ctx: Context,
    delivery: list[float],
    page: list[float],
    mem: dict[str, float],
    polls: int,
    asynced: dict[str, float],
    frontends: int,
) -> None:
    """Rows in the summary table and a section with the distribution."""
    d, p = sorted(delivery), sorted(page)
    d99, p99 = percentile(d, 99), percentile(p, 99)
    per_poll_kib = max(0.0, (mem["during"] - mem["before"]) * 1024 / polls)
    projected = mem["before"] + per_poll_kib * FRONTENDS / 1024
    ctx.results["revocation"] = {
        "delivery_s": delivery,
        "page_s": page,
        "memory_mib": mem,
        "per_poll_kib": per_poll_kib,
    }
    ctx.report.rows += [
        ctx.row(
            "R1. Sign-out → site serves the teaser, p99",
            f"{p99 * 1000:.0f} ms (median {percentile(p, 50) * 1000:.0f} ms, n={len(p)})",
            "—",
            "—",
            f"≤ {TARGET_PAGE_P99:.0f} s",
            p99 <= TARGET_PAGE_P99,
        ),
        ctx.row(
            "R2. Sign-out → feed delivered to a watcher, p99",
            f"{d99 * 1000:.0f} ms (median {percentile(d, 50) * 1000:.0f} ms, n={len(d)})",
            "—",
            "—",
            f"≤ {TARGET_FEED_P99:.0f} s",
            d99 <= TARGET_FEED_P99,
        ),
        ctx.row(
            f"R3. Feed server RSS with {frontends:,} long polls held (asyncio)",
            f"{asynced['during']:.0f} MiB"
            f" ({(asynced['during'] - asynced['before']) * 1024 / frontends:.1f} KiB per poll)",
            f"{asynced['before']:.0f} MiB idle",
            "—",
            f"< {MEMORY_TARGET_MIB} MB",
            asynced["during"] < MEMORY_TARGET_MIB and asynced["delivered"] == frontends,
        ),
        ctx.row(
            f"R4. Sign-out → all {frontends:,} waiting polls answered",
            f"{asynced['all_answered_s'] * 1000:.0f} ms"
            f" ({asynced['delivered']:.0f} of {frontends:,} got it)",
            "—",
            "—",
            f"≤ {TARGET_FEED_P99:.0f} s",
            asynced["all_answered_s"] <= TARGET_FEED_P99 and asynced["delivered"] == frontends,
        ),
        ctx.row(
            f"R5. gthread worker RSS with {FRONTENDS:,} long polls (projected from {polls:,} held)",
            f"{projected:.0f} MiB ({per_poll_kib:.1f} KiB per poll)",
            f"{mem['before']:.0f} MiB idle",
            "—",
            f"< {MEMORY_TARGET_MIB} MB",
            projected < MEMORY_TARGET_MIB,
        ),
    ]
    sec = ctx.report.section(
        "revocation", "Revocation latency and long polls", ctx.command("revocation")
    )
    sec.add(
        f"The service under `gunicorn {FEED_CONFIG.describe()}` with a publisher key; the news"
        " site in the benchmark process, following the feed with its watcher. Each trial: a"
        " premium reader's article page shows premium text, the reader's session is signed out"
        " (`DELETE /api/v1/sessions/current`), then the page is viewed again and again until"
        " it shows only the teaser (time from the sign-out's response), and a second watcher"
        " records when the revocation reached it (feed delivery).",
        "",
    )
    sec.body += table(
        ["Measure", "median", "p90", "p99", "max", "n"],
        [
            [
                name,
                *(f"{percentile(v, q) * 1000:.0f} ms" for q in (50, 90, 99)),
                f"{v[-1] * 1000:.0f} ms",
                str(len(v)),
            ]
            for name, v in (("page shows the teaser", p), ("feed delivery", d))
        ],
    )
    sec.add(
        "",
        f"Long polls: one gthread worker with a thread per poll held {polls:,} polls"
        f" (`wait=30`) at once: RSS {mem['before']:.1f} MiB before, {mem['during']:.1f} MiB"
        f" while held, {per_poll_kib:.1f} KiB per poll; {FRONTENDS:,} frontends' polls would"
        f" need about {projected:.0f} MiB on threads. The asyncio feed server"
        " (`python -m paywall.entitlements.feed_server`, the same state and answers) held"
        f" {asynced['waiting']:.0f} waiting polls in {asynced['during']:.1f} MiB"
        f" ({asynced['before']:.1f} MiB idle); one sign-out reached all of them"
        f" ({asynced['delivered']:.0f} answers with the revocation) in"
        f" {asynced['all_answered_s'] * 1000:.0f} ms.",
    )
