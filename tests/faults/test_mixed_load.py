"""Sustained mixed load on loopback: logins, token refreshes, webhooks and sign-outs together.
No errors, no cap violation, no lost or doubled event.

A fixed amount of work, not a duration: how much a machine gets through, and how the workers'
memory grows under load, are figures for ``make bench`` (benchmarks 2-6, docs/benchmarks.md),
not thresholds here (a shared machine would make them flake)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from paywall.billing.models import StripeEvent
from paywall.devices.models import DeviceSession
from paywall.extensions import db
from tests.conftest import STANDIN_API_KEY
from tests.functional.test_article_site import sign_up_and_log_in, subscribe

LOGINS_PER_CLIENT = 8  # each followed by 3 refreshes and, sometimes, a sign-out
CLIENTS = 4
RENEWALS = 40
ACCOUNTS = 4
LIVENESS = 300  # seconds: a bound on a hang, not a timing target
EXPECTED = {
    "login": {201},
    "refresh": {200, 401},  # 401: this device was evicted by another login, as designed
    "sign_out": {204, 401, 404},  # the device may already be gone
}


@pytest.fixture
def app_config() -> dict:
    return {"DEVICE_POLICY": "evict_lru"}


def max_active_per_account(stack: Any) -> int:
    with stack.service.app.app_context():
        from paywall.clock import utcnow

        counts = db.session.execute(
            select(DeviceSession.account_id, func.count())
            .where(DeviceSession.ended_at.is_(None), DeviceSession.expires_at > utcnow())
            .group_by(DeviceSession.account_id)
        ).all()
        db.session.remove()
        return max((n for _a, n in counts), default=0)


def test_sustained_mixed_load(live_stack: Any) -> None:
    url = live_stack.service.url
    before = {e["id"] for e in live_stack.standin.events}  # the catalogue, created before serving
    emails = [f"load{i}@example.com" for i in range(ACCOUNTS)]
    subs = []
    for email in emails:
        browser = sign_up_and_log_in(live_stack, email)
        subscribe(live_stack, browser)
    subs = [s["id"] for s in live_stack.standin.objects("subscription")]
    assert len(subs) == ACCOUNTS
    done = threading.Event()
    seen: Counter[tuple[str, int]] = Counter()
    errors: list[str] = []
    cap_samples: list[int] = []
    lock = threading.Lock()

    def record(kind: str, status: int) -> None:
        with lock:
            seen[(kind, status)] += 1
            if status not in EXPECTED[kind]:
                errors.append(f"{kind} -> {status}")

    def logins(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(LOGINS_PER_CLIENT):
            session = requests.Session()
            response = session.post(
                url + "/api/v1/sessions",
                json={"email": rng.choice(emails), "password": "correct horse battery staple"},
            )
            record("login", response.status_code)
            for _ in range(3):
                refreshed = session.post(
                    url + "/api/v1/entitlements/token", headers={"Origin": url}
                )
                record("refresh", refreshed.status_code)
            if rng.random() < 0.3:
                listing = session.get(url + "/api/v1/sessions")
                if listing.status_code == 200 and listing.json()["sessions"]:
                    victim = rng.choice(listing.json()["sessions"])["id"]
                    record(
                        "sign_out",
                        session.delete(
                            url + f"/api/v1/sessions/{victim}", headers={"Origin": url}
                        ).status_code,
                    )

    def renewals() -> None:
        for i in range(RENEWALS):
            live_stack.standin.renew(subs[i % len(subs)])
            time.sleep(0.05)

    def watch() -> None:
        while not done.is_set():
            cap_samples.append(max_active_per_account(live_stack))
            time.sleep(0.5)

    workers = [threading.Thread(target=logins, args=(i,)) for i in range(CLIENTS)]
    workers += [threading.Thread(target=renewals)]
    watcher = threading.Thread(target=watch)
    for thread in [*workers, watcher]:
        thread.start()
    for thread in workers:
        thread.join(timeout=LIVENESS)
    done.set()
    watcher.join(timeout=LIVENESS)
    assert not any(thread.is_alive() for thread in [*workers, watcher]), "the load hung"
    # A bound on liveness, not a timing target: on a loaded 2-core machine the re-fetching
    # webhook backlog can take longer than 30 s to drain.
    assert live_stack.standin.wait_for_webhooks(180)

    assert errors == [], (errors[:10], seen)
    # Every operation was done and answered (the counts are the plan, not a throughput).
    assert seen[("login", 201)] == CLIENTS * LOGINS_PER_CLIENT, seen
    assert sum(n for (kind, _s), n in seen.items() if kind == "refresh") == 3 * (
        CLIENTS * LOGINS_PER_CLIENT
    )
    assert seen[("refresh", 200)] > 0, seen
    assert max(cap_samples + [max_active_per_account(live_stack)]) <= 5
    sent = [e["id"] for e in live_stack.standin.events if e["id"] not in before]
    attempts = requests.get(
        live_stack.standin.url + "/_standin/webhook_attempts",
        headers={"Authorization": f"Bearer {STANDIN_API_KEY}"},
        timeout=5,
    ).json()
    assert attempts["undelivered"] == []
    with live_stack.service.app.app_context():
        stored = db.session.scalars(select(StripeEvent.id)).all()
        stored = [event_id for event_id in stored if event_id not in before]
        failed = db.session.scalar(
            select(func.count()).select_from(StripeEvent).where(StripeEvent.status == "failed")
        )
    assert sorted(stored) == sorted(set(sent))  # every event stored, none twice
    assert failed == 0
