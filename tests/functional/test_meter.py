"""The server-side meter: PAYWALL_METER_LIMIT distinct metered articles per UTC month, counted
by account (so a new device or cleared cookies do not reset it), never passed under concurrency,
and never applied to subscribers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from paywall.meter.services import month_of, next_month_start
from tests.conftest import AuthActions, Stripe


def read(browser: Any, article: str) -> dict[str, Any]:
    response = browser.post("/api/v1/meter/reads", json={"article": article})
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_the_meter_counts_down_and_stops_at_its_limit(auth: AuthActions, reader: str) -> None:
    browser = auth.browser()
    answers = [read(browser, f"story-{n}") for n in range(4)]
    assert [(a["allowed"], a["remaining"], a["limit"]) for a in answers] == [
        (True, 2, 3),
        (True, 1, 3),
        (True, 0, 3),
        (False, 0, 3),
    ]
    resets = datetime.fromisoformat(answers[0]["resets_at"])
    now = datetime.now(UTC)
    assert resets > now and resets.day == 1 and resets.hour == 0
    # An article already read this month stays readable at the limit.
    assert read(browser, "story-0")["allowed"] is True


def test_the_same_article_twice_counts_once(auth: AuthActions, reader: str) -> None:
    browser = auth.browser()
    assert read(browser, "story")["remaining"] == 2
    assert read(browser, "story")["remaining"] == 2
    assert read(browser, "other")["remaining"] == 1


def test_a_new_device_for_the_same_account_keeps_the_count(auth: AuthActions, reader: str) -> None:
    laptop = auth.browser(name="Laptop")
    for n in range(3):
        read(laptop, f"story-{n}")
    phone = auth.browser(name="Phone")  # a new device: no cookies shared with the laptop
    assert read(phone, "story-9") == {**read(phone, "story-9"), "allowed": False, "remaining": 0}
    assert read(phone, "story-1")["allowed"] is True


def test_concurrent_reads_of_different_articles_never_pass_the_limit(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    browsers = [auth.browser(name=f"Device {n}") for n in range(5)]
    barrier = threading.Barrier(len(browsers) * 2)
    results: list[bool] = []
    lock = threading.Lock()

    def go(browser: Any, article: str) -> None:
        barrier.wait()
        answer = read(browser, article)
        with lock:
            results.append(answer["allowed"])

    threads = [threading.Thread(target=go, args=(browsers[n % 5], f"race-{n}")) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True] * 3
    assert read(browsers[0], "another")["allowed"] is False


def test_the_meter_needs_a_signed_in_reader_and_a_valid_article(
    client: Any, auth: AuthActions, reader: str
) -> None:
    response = client.post("/api/v1/meter/reads", json={"article": "story"})
    assert response.status_code == 401
    browser = auth.browser()
    for bad in ({}, {"article": ""}, {"article": "../etc"}, {"article": 5}, {"article": "x" * 201}):
        response = browser.post("/api/v1/meter/reads", json=bad)
        assert response.status_code == 422, bad
        assert response.get_json()["error"]["code"] == "validation_error"
    assert read(browser, "story")["remaining"] == 2  # the bad calls counted nothing


def test_subscribers_are_never_metered(billing_auth: AuthActions, stripe_actions: Stripe) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    stripe_actions.subscribe(browser)
    stripe_actions.deliver()
    for n in range(6):
        answer = read(browser, f"story-{n}")
        assert answer["allowed"] is True and answer["metered"] is False


def test_calendar_months_in_utc() -> None:
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2026-12"
    assert next_month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert next_month_start(datetime(2026, 2, 3, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_limit_of_zero_is_refused_only_when_negative() -> None:
    import pytest

    from paywall.config import ConfigError, check_config

    base = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "DEVICE_POLICY": "refuse", "MAX_DEVICES": 5}
    with pytest.raises(ConfigError, match="PAYWALL_METER_LIMIT"):
        check_config({**base, "METER_LIMIT": -1}, demo=True)
    check_config({**base, "METER_LIMIT": 0}, demo=True)
