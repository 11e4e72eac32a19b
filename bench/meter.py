"""The meter benchmark: the metered read (``POST /api/v1/meter/reads``'s service path) with
1,000,000 accounts and their reads of this month and last, against the same path on a small
table.

Both databases are migrated by the service's own migrations and seeded server-side
(``INSERT ... SELECT generate_series``), not through the ORM. The measured call is the one the
view makes, ``meter_service().read(account, article)``, each in its own app context (as each
request has): the reader's access (subscription and grant lookups), the account row lock, the
row of this article this month, the count of this month's reads, the insert. Each call is rolled
back, so every call meets the same state (a new article with one place left); the commit
itself does not depend on the table's size. Calls to the two databases are interleaved one by
one, so the ratio compares like with like on a noisy machine."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import database
from bench.report import code, table
from bench.stats import Runs

if TYPE_CHECKING:
    from bench.runner import Context

TARGET = 1.2
READS_THIS_MONTH = 2  # every seeded reader has one free article left this month
READS_LAST_MONTH = 3


@dataclass(frozen=True)
class MeterSize:
    accounts: int
    samples: int  # distinct readers measured per round
    calls: int  # calls per database per round
    rounds: int


FULL = MeterSize(accounts=1_000_000, samples=300, calls=600, rounds=5)
SMOKE = MeterSize(accounts=20_000, samples=50, calls=200, rounds=2)
SMALL_ACCOUNTS = 1_000


def _config(ctx: Context, url: str) -> dict[str, Any]:
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": ctx.secret_key,
        "ENTITLEMENT_SIGNING_KEYS": [ctx.entitlement_key],
        "VAPID_PRIVATE_KEY": ctx.vapid_key,
        "STRIPE_API_KEY": ctx.stripe_key,
        "STRIPE_WEBHOOK_SECRET": [ctx.webhook_secret],
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # never called: no plan is looked up
        "SMTP_URL": f"smtp://127.0.0.1:{ctx.smtp_port}",
        "RATELIMIT_ENABLED": False,
    }


def _migrate(ctx: Context, url: str) -> None:
    from flask_migrate import upgrade

    from paywall import create_app
    from paywall.extensions import db

    app = create_app(_config(ctx, url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def seed(url: str, accounts: int, password_hash: str) -> dict[str, float]:
    """Accounts ``md5('meter-account-i')``, each with READS_THIS_MONTH reads this month and
    READS_LAST_MONTH last month (so the month filter matters); the primary key of
    ``meter_reads`` is dropped during the load and rebuilt after it. Seconds per step."""
    timings: dict[str, float] = {}
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET synchronous_commit = off")
        t = time.perf_counter()
        cur.execute(
            "INSERT INTO accounts (id, email, password_hash, email_verified_at, created_at,"
            " password_changed_at)"
            " SELECT md5('meter-account-' || i), 'meter' || i || '@scale.example.com', %(h)s,"
            "   now() - interval '300 days', now() - (i || ' seconds')::interval,"
            "   now() - interval '300 days'"
            " FROM generate_series(1, %(n)s) AS i",
            {"h": password_hash, "n": accounts},
        )
        conn.commit()
        timings[f"{accounts:,} accounts"] = time.perf_counter() - t
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'meter_reads'::regclass ORDER BY contype = 'f'"
        )
        constraints = cur.fetchall()
        for name, _definition in reversed(constraints):
            cur.execute(f'ALTER TABLE meter_reads DROP CONSTRAINT "{name}"')
        t = time.perf_counter()
        months = [
            ("to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')", READS_THIS_MONTH),
            (
                "to_char((now() AT TIME ZONE 'UTC') - interval '1 month', 'YYYY-MM')",
                READS_LAST_MONTH,
            ),
        ]
        for month_sql, reads in months:
            cur.execute(
                "INSERT INTO meter_reads (account_id, month, article, read_at)"
                f" SELECT md5('meter-account-' || i), {month_sql}, 'seeded-story-' || r, now()"
                " FROM generate_series(1, %(n)s) AS i, generate_series(1, %(r)s) AS r",
                {"n": accounts, "r": reads},
            )
        conn.commit()
        rows = accounts * (READS_THIS_MONTH + READS_LAST_MONTH)
        timings[f"{rows:,} metered reads"] = time.perf_counter() - t
        t = time.perf_counter()
        for name, definition in constraints:
            cur.execute(f'ALTER TABLE meter_reads ADD CONSTRAINT "{name}" {definition}')
        conn.commit()
        timings["rebuild the primary key and foreign key"] = time.perf_counter() - t
    t = time.perf_counter()
    with database.psycopg.connect(url, autocommit=True) as conn:
        for name in ("accounts", "meter_reads"):
            conn.execute(f"VACUUM (ANALYZE) {name}")
    timings["VACUUM ANALYZE"] = time.perf_counter() - t
    return timings


class Bench:
    """The service, in this process, on one database."""

    def __init__(self, ctx: Context, url: str, accounts: int, samples: int) -> None:
        from paywall import create_app

        self.app = create_app(_config(ctx, url))
        step = max(accounts // samples, 1)
        import hashlib

        self.ids = [
            hashlib.md5(f"meter-account-{i}".encode()).hexdigest()  # noqa: S324 - the seed's
            for i in range(1, accounts + 1, step)
        ][:samples]
        self.statements: list[str] = []

    def call(self, account_id: str, article: str) -> float:
        """One metered read of a new article, rolled back; seconds."""
        from paywall.accounts.models import Account
        from paywall.extensions import db
        from paywall.meter.services import meter_service

        with self.app.app_context():
            account = db.session.get(Account, account_id)
            assert account is not None, account_id  # noqa: S101 - the seed's own rows
            t = time.perf_counter()
            answer = meter_service().read(account, article)
            elapsed = time.perf_counter() - t
            db.session.rollback()
            if not (answer.allowed and answer.remaining == 0 and answer.metered):
                raise RuntimeError(f"unexpected meter answer {answer} for {account_id}")
            return elapsed

    def capture(self, account_id: str) -> list[tuple[str, Any]]:
        """The SQL one metered read sends (for EXPLAIN)."""
        from sqlalchemy import event

        from paywall.extensions import db

        captured: list[tuple[str, Any]] = []

        def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            captured.append((statement, parameters))

        with self.app.app_context():
            event.listen(db.engine, "before_cursor_execute", before)
            try:
                self.call(account_id, "bench-explain")
            finally:
                event.remove(db.engine, "before_cursor_execute", before)
        # The first statement loads the account (the request's login, not the meter).
        return captured[1:]

    def close(self) -> None:
        from paywall.extensions import db

        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


def _round(bench: Bench, calls: int, tag: str) -> float:
    """Median seconds per call over ``calls`` calls spread over the sampled readers."""
    times = [bench.call(bench.ids[n % len(bench.ids)], f"bench-{tag}-{n}") for n in range(calls)]
    return Runs.of(times).median


def _paired_round(small: Bench, large: Bench, calls: int, tag: str) -> tuple[float, float]:
    """Median seconds per call on each database, the calls interleaved one by one (which goes
    first alternates), so both meet the same moment of a shared machine's noise."""
    times: dict[int, list[float]] = {id(small): [], id(large): []}
    for n in range(calls):
        for bench in (small, large) if n % 2 == 0 else (large, small):
            times[id(bench)].append(bench.call(bench.ids[n % len(bench.ids)], f"bench-{tag}-{n}"))
    return Runs.of(times[id(small)]).median, Runs.of(times[id(large)]).median


def _server_ms(bench: Bench, url: str) -> float:
    """PostgreSQL's own execution time (EXPLAIN ANALYZE, warm) of every SELECT one metered
    read sends, summed: the part of the cost that could grow with the table."""
    total = 0.0
    for statement, params in bench.capture(bench.ids[len(bench.ids) // 2]):
        if statement.lstrip().upper().startswith("SELECT"):
            text = database.explain(url, statement, params)
            total += next(
                float(line.split(":")[1].split()[0])
                for line in text.splitlines()
                if line.strip().startswith("Execution Time:")
            )
    return total


def run(ctx: Context) -> None:
    from bench.runner import log

    size = SMOKE if ctx.plan.smoke else FULL
    urls: dict[str, str] = {}
    seeding: dict[str, dict[str, float]] = {}
    benches: dict[str, Bench] = {}
    try:
        for kind, accounts in (("meter_small", SMALL_ACCOUNTS), ("meter_large", size.accounts)):
            name = ctx.db_name(kind)
            urls[kind] = database.recreate(name)
            ctx.extra_dbs.append(name)
            log(f"meter: migrating and seeding {name} ({accounts:,} accounts)")
            _migrate(ctx, urls[kind])
            seeding[kind] = seed(urls[kind], accounts, ctx.ensure_password_hash())
            benches[kind] = Bench(ctx, urls[kind], accounts, size.samples)
        small, large = benches["meter_small"], benches["meter_large"]
        for bench in (small, large):  # warm the pools and caches, unmeasured
            _round(bench, min(size.calls, 100), "warm")
        results: dict[str, list[float]] = {
            "small": [],
            "large": [],
            "ratio": [],
            "server_small": [],
            "server_large": [],
        }
        for r in range(size.rounds):
            s, lg = _paired_round(small, large, size.calls, f"r{r}")
            results["server_small"].append(_server_ms(small, urls["meter_small"]))
            results["server_large"].append(_server_ms(large, urls["meter_large"]))
            results["small"].append(s * 1000)
            results["large"].append(lg * 1000)
            results["ratio"].append(lg / s)
            log(f"meter: round {r + 1}: small {s * 1e3:.3f} ms, large {lg * 1e3:.3f} ms")
        plans = []
        for statement, params in large.capture(large.ids[len(large.ids) // 2]):
            if statement.lstrip().upper().startswith("SELECT"):
                plans.append((statement, database.explain(urls["meter_large"], statement, params)))
        sizes = database.table_sizes(urls["meter_large"], ("accounts", "meter_reads"))
    finally:
        for bench in benches.values():
            bench.close()
    _report(ctx, size, results, seeding, plans, sizes)


def _report(
    ctx: Context,
    size: MeterSize,
    results: dict[str, list[float]],
    seeding: dict[str, dict[str, float]],
    plans: list[tuple[str, str]],
    sizes: list[tuple[str, int, str]],
) -> None:
    ctx.results["meter"] = {"size": size.__dict__, **results, "seeding": seeding}
    small, large, ratio = (Runs.of(results[k]) for k in ("small", "large", "ratio"))
    ctx.report.rows.append(
        ctx.row(
            f"Meter: metered read at {size.accounts:,} accounts, ms/call",
            large.fmt(3, "ms"),
            small.fmt(3, "ms") + f" at {SMALL_ACCOUNTS:,} accounts",
            ratio.fmt(2, "×"),
            f"≤ {TARGET}×",
            ratio.median <= TARGET,
        )
    )
    server_small, server_large = Runs.of(results["server_small"]), Runs.of(results["server_large"])
    server_ratio = Runs.of(
        [b / a for a, b in zip(results["server_small"], results["server_large"], strict=True)]
    )
    ctx.report.rows.append(
        ctx.row(
            f"Meter: metered read at {size.accounts:,} accounts: PostgreSQL execution time of its"
            " SELECTs, ms",
            server_large.fmt(3, "ms"),
            server_small.fmt(3, "ms") + f" at {SMALL_ACCOUNTS:,} accounts",
            server_ratio.fmt(2, "×"),
            "(reference)",
            None,
        )
    )
    sec = ctx.report.section("meter", "The meter at 1,000,000 accounts", ctx.command("meter"))
    sec.add(*(__doc__ or "").split("\n\n")[1:2])
    sec.add(
        "",
        f"Large: {size.accounts:,} accounts, each with {READS_THIS_MONTH} reads this month and"
        f" {READS_LAST_MONTH} last month ({size.accounts * 5:,} rows in `meter_reads`); small:"
        f" {SMALL_ACCOUNTS:,} accounts seeded the same way. Per round and database,"
        f" {size.calls:,} calls over {size.samples} readers spread across the table, the two"
        " databases' calls interleaved one by one; the round's value is the median call;"
        f" {size.rounds} rounds. Each round also takes PostgreSQL's own execution time"
        " (EXPLAIN ANALYZE, warm) of the SELECTs one call sends, summed: the call's cost is"
        " mostly round trips and Python, this is the part that could grow with the table.",
        "",
    )
    sec.body += table(
        ["round", "small (ms)", "large (ms)", "large ÷ small", "SQL small (ms)", "SQL large (ms)"],
        [
            [str(i + 1), f"{s:.3f}", f"{lg:.3f}", f"{r:.2f}×", f"{ss:.3f}", f"{sl:.3f}"]
            for i, (s, lg, r, ss, sl) in enumerate(
                zip(
                    results["small"],
                    results["large"],
                    results["ratio"],
                    results["server_small"],
                    results["server_large"],
                    strict=True,
                )
            )
        ],
    )
    sec.add("", "Seeding (seconds):", "")
    sec.body += table(
        ["database", "step", "s"],
        [[kind, step, f"{s:.1f}"] for kind, steps in seeding.items() for step, s in steps.items()],
    )
    sec.add("", "Table sizes (large):", "")
    sec.body += table(["table", "rows", "size"], [[t, f"{n:,}", s] for t, n, s in sizes])
    sec.add("", "Query plans of the SELECTs one metered read sends (large database):", "")
    for statement, text in plans:
        sec.body += code(statement.strip(), "sql")
        sec.body += code(text)
