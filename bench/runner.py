"""The run: parameters, the Stripe stand-in, the databases and servers, and helpers the
benchmarks share."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu, database, loadgen
from bench.procs import ROOT, Gunicorn, GunicornConfig, Memory, free_port, memory_of
from bench.report import Report, Row, Section
from bench.stats import Runs


@dataclass(frozen=True)
class Plan:
    smoke: bool
    runs: int  # measured runs per HTTP benchmark (median and spread over them)
    seconds: float  # length of one load run
    warmup: float  # unmeasured load before the first run of each server
    connections: int  # wrk connections (2 per sync worker: one in service, one queued)
    token_calls: int
    token_repeats: int
    token_pool: int
    readers: int  # accounts with one session each (token refresh)
    logins: int  # accounts without sessions (login)
    billing_readers: int  # readers who subscribe through checkout (webhooks)
    login_seq_seconds: float  # one-connection login run (overhead outside the hash)
    argon2_samples: int
    webhook_events: int  # distinct signed events generated per run
    scale: database.ScaleSize
    scale_runs: int
    profile: bool
    profile_seconds: float
    notify_subscriptions: int  # push subscriptions one story fans out to
    notify_runs: int


FULL = Plan(
    smoke=False,
    runs=5,
    seconds=8,
    warmup=2,
    connections=4,
    token_calls=20_000,
    token_repeats=7,
    token_pool=2_000,
    readers=1_000,
    logins=4_000,
    billing_readers=100,
    login_seq_seconds=4,
    argon2_samples=15,
    webhook_events=30_000,
    scale=database.ScaleSize(1_000_000, 5, 1_000_000),
    scale_runs=5,
    profile=True,
    profile_seconds=8,
    notify_subscriptions=100_000,
    notify_runs=1,  # 1 and 2 workers: ~20 min each at 100,000 on a shared 2-core machine
)
SMOKE = Plan(
    smoke=True,
    runs=1,
    seconds=1,
    warmup=0,
    connections=4,
    token_calls=2_000,
    token_repeats=3,
    token_pool=200,
    readers=20,
    logins=60,
    billing_readers=3,
    login_seq_seconds=1,
    argon2_samples=3,
    webhook_events=4_000,
    scale=database.ScaleSize(1_000, 5, 1_000),
    scale_runs=1,
    profile=False,
    profile_seconds=2,
    notify_subscriptions=300,
    notify_runs=1,
)

GUNICORN = GunicornConfig(workers=2, threads=1, worker_class="sync")


@dataclass
class DbState:
    """One benchmark database, its fixtures and the service serving it."""

    name: str
    url: str
    fixtures: database.Fixtures
    server: Gunicorn | None = None
    login_offset: int = 0
    memory: dict[str, list[Memory]] = field(default_factory=dict)


class Context:
    def __init__(self, plan: Plan, out: Path, only: set[str]) -> None:
        self.plan = plan
        self.out = out
        self.only = only
        self.extra_dir = (
            ROOT / "docs" / "benchmarks"
            if not plan.smoke and not only
            else out.parent / (out.stem + "-files")
        )
        self.results_dir = ROOT / "bench" / "results" / ("smoke" if plan.smoke else "full")
        self.logs = self.results_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.requests_dir = self.results_dir / "requests"
        self.report = Report("Benchmarks")
        self.results: dict[str, Any] = {}
        self.sanity: list[str] = []  # harness problems (the smoke run fails on any)
        self.secret_key = secrets.token_hex(32)
        from paywall.entitlements.keys import generate_pem

        self.entitlement_key = generate_pem()  # Ed25519, per run
        from paywall.notifications.push import new_vapid_pem

        self.vapid_key = new_vapid_pem()  # per run, like the other keys
        self.stripe_key = "sk_test_bench_" + secrets.token_hex(12)
        self.webhook_secret = "whsec_bench_" + secrets.token_hex(16)
        self.smtp_port = free_port()  # nothing listens: emails are only logged as failed
        self.standin: Any = None
        self.dbs: dict[str, DbState] = {}
        self.extra_dbs: list[str] = []  # databases a benchmark made for itself (dropped after)
        self.bare: Gunicorn | None = None
        self.password_hash = ""
        self.notes: dict[str, Any] = {}

    # -- naming -------------------------------------------------------------------------------
    def db_name(self, kind: str) -> str:
        base = database.PREFIX + ("_smoke" if self.plan.smoke else "")
        return base if kind == "empty" else f"{base}_{kind}"

    def command(self, key: str) -> str:
        smoke = " --smoke" if self.plan.smoke else ""
        return f".venv/bin/python -m bench --only {key}{smoke}"

    def row(
        self, metric: str, result: str, baseline: str, ratio: str, target: str, met: bool | None
    ) -> Row:
        return Row(metric, result, baseline, ratio, target, met)

    def notes_for(self, key: str, section: Section, *values: Any) -> None:
        from bench import notes

        notes.add(key, self, section, *values)

    # -- set-up -------------------------------------------------------------------------------
    def start_standin(self) -> None:
        import logging

        from stripe_standin import StandIn

        logging.getLogger("stripe_standin").setLevel(logging.WARNING)
        self.standin = StandIn(self.stripe_key, self.webhook_secret).start()

    def service_env(self, db_url: str, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYWALL_")}
        env.update(
            {
                "PAYWALL_DATABASE_URL": db_url,
                "PAYWALL_SECRET_KEY": self.secret_key,
                "PAYWALL_ENTITLEMENT_SIGNING_KEYS": json.dumps([self.entitlement_key]),
                "PAYWALL_VAPID_PRIVATE_KEY": self.vapid_key,
                "PAYWALL_STRIPE_API_KEY": self.stripe_key,
                "PAYWALL_STRIPE_WEBHOOK_SECRET": self.webhook_secret,
                "PAYWALL_STRIPE_API_BASE": self.standin.url,
                "PAYWALL_SMTP_URL": f"smtp://127.0.0.1:{self.smtp_port}",
                "PAYWALL_PUBLIC_URL": f"http://127.0.0.1:{port}",
                # Benchmarks 3 and 5 log in thousands of times from one address.
                "PAYWALL_RATELIMIT_ENABLED": "false",
                "PAYWALL_DEVICE_POLICY": "evict_lru",
            }
        )
        return env

    def service_settings(self) -> list[str]:
        """The non-secret settings every service run uses (for the report)."""
        return [
            "`PAYWALL_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<bench db>`",
            "`PAYWALL_SECRET_KEY` (random, 64 chars), `PAYWALL_ENTITLEMENT_SIGNING_KEYS` (a new"
            " Ed25519 key), per run",
            "`PAYWALL_STRIPE_API_KEY`, `PAYWALL_STRIPE_WEBHOOK_SECRET` (random per run),"
            " `PAYWALL_STRIPE_API_BASE=<Stripe stand-in on loopback>`",
            "`PAYWALL_SMTP_URL=smtp://127.0.0.1:<unused port>`",
            "`PAYWALL_RATELIMIT_ENABLED=false`, `PAYWALL_DEVICE_POLICY=evict_lru`",
            "argon2id at the service default m=19456 KiB, t=2, p=1; every other setting at"
            " its default",
        ]

    def ensure_password_hash(self) -> str:
        if not self.password_hash:
            from paywall.accounts.passwords import PasswordHashing
            from paywall.config import DEFAULTS

            hashing = PasswordHashing(
                DEFAULTS["ARGON2_TIME_COST"],
                DEFAULTS["ARGON2_MEMORY_COST"],
                DEFAULTS["ARGON2_PARALLELISM"],
            )
            self.password_hash = hashing.hash(database.PASSWORD)
        return self.password_hash

    def prepare_db(self, kind: str) -> DbState:
        if kind in self.dbs:
            return self.dbs[kind]
        name = self.db_name(kind)
        url = database.recreate(name)
        env = self.service_env(url, 0)
        database.flask_cli(env, "db", "upgrade")
        database.flask_cli(env, "billing", "create-demo-catalogue")
        price = database.premium_price_id(url)
        if price is None:
            raise RuntimeError("the demo catalogue has no premium_monthly plan")
        p = self.plan
        fx = database.seed_fixtures(
            url,
            readers=p.readers,
            logins=p.logins,
            billing_readers=p.billing_readers if kind == "empty" else 0,
            password_hash=self.ensure_password_hash(),
            premium_price_id=price,
            tag=kind,
        )
        state = DbState(name, url, fx)
        self.dbs[kind] = state
        return state

    def start_service(self, kind: str) -> Gunicorn:
        state = self.dbs[kind]
        if state.server is not None:
            return state.server
        port = free_port()
        server = Gunicorn(
            f"service-{kind}",
            "wsgi:app",
            self.service_env(state.url, port),
            GUNICORN,
            self.logs / f"service-{kind}.log",
            port=port,
            dbname=state.name,
        )
        server.start()
        time.sleep(1.0)  # let the workers settle before the idle memory reading
        state.server = server
        state.memory["idle (started, no request yet)"] = self.worker_memory(server)
        return server

    def start_bare(self) -> Gunicorn:
        if self.bare is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PAYWALL_")}
            empty = self.dbs.get("empty")
            if empty is not None:  # for its /token-db endpoint
                env["BENCH_DATABASE_URL"] = empty.url
            self.bare = Gunicorn(
                "bare",
                "bench.bare_app:app",
                env,
                GUNICORN,
                self.logs / "bare.log",
                dbname=empty.name if empty is not None else None,
            ).start()
        return self.bare

    def worker_memory(self, server: Gunicorn) -> list[Memory]:
        return [memory_of(pid) for pid in server.worker_pids()]

    def clean(self) -> None:
        """Forget the previous run's server logs and request files (this run writes its own;
        the logs of the last run stay for debugging)."""
        for old in [*self.logs.glob("*.log"), *self.requests_dir.glob("*.txt")]:
            old.unlink(missing_ok=True)

    def stop(self) -> None:
        for state in self.dbs.values():
            if state.server is not None:
                state.server.stop()
                state.server = None
        if self.bare is not None:
            self.bare.stop()
            self.bare = None
        if self.standin is not None:
            self.standin.stop()
            self.standin = None
        for path in self.requests_dir.glob("*.txt"):  # up to 100 MB of signed webhook bodies
            path.unlink(missing_ok=True)

    # -- load ---------------------------------------------------------------------------------
    def requests_file(self, name: str, requests: Sequence[loadgen.Request]) -> Path:
        return loadgen.write_requests(requests, self.requests_dir / f"{name}.txt")

    def load(
        self,
        server: Gunicorn,
        requests_file: Path,
        *,
        seconds: float | None = None,
        connections: int | None = None,
        offset: int = 0,
        label: str = "",
    ) -> tuple[loadgen.LoadResult, dict[str, float]]:
        """One load run; returns the result and the CPU seconds per process group."""
        pids = set(server.worker_pids()) | ({server.proc.pid} if server.proc else set())
        db_pids = database.backend_pids(server.dbname) if server.dbname else set()
        before = cpu.snapshot()
        res = loadgen.run(
            server.url,
            requests_file,
            connections=connections or self.plan.connections,
            seconds=seconds or self.plan.seconds,
            offset=offset,
        )
        after = cpu.snapshot()
        if server.dbname:
            db_pids |= database.backend_pids(server.dbname)
        split = cpu.split(before, after, pids, db_pids)
        if res.ok == 0:
            self.sanity.append(f"{label or requests_file.name}: no successful response")
        if res.errors and self.plan.smoke:
            self.sanity.append(f"{label or requests_file.name}: {res.errors} errors")
        return res, split

    def post(
        self,
        url: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any]:
        raw = data if data is not None else json.dumps(body or {}).encode()
        req = urllib.request.Request(  # noqa: S310 - the harness's own loopback servers
            url,
            data=raw,
            method="POST",
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def fmt_ms(runs: Runs) -> str:
    return runs.fmt(1, "ms")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
