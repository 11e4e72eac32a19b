"""Issue 9 §3: after cancel-now, a refund, an eviction, a remote sign-out or a password reset,
the reader's next page views stop showing premium text within seconds, not when the 5-minute
token expires. The token lifetime stays at its default (300 s): on the code before the feed the
site served premium text for minutes, so each test failed its 60 s liveness bound. The seconds
it took are recorded (``record_property``), never asserted (a shared, noisy machine)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import stripe

from tests.conftest import PASSWORD, STANDIN_API_KEY, Mailbox, link_from
from tests.functional.test_article_site import (
    PATHS,
    leaks,
    premium_fragments,
    sign_up_and_log_in,
    subscribe,
)

LIVENESS = 60.0  # far below the token lifetime: premium until expiry fails it


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"DEVICE_POLICY": "evict_lru"}


def premium_reader(stack: Any) -> requests.Session:
    browser = sign_up_and_log_in(stack)
    subscribe(stack, browser)
    assert leaks(page(stack, browser)) == premium_fragments()
    return browser


def page(stack: Any, browser: requests.Session) -> str:
    return browser.get(stack.site.url + PATHS[0], timeout=10).text


def seconds_to_teaser(stack: Any, browser: requests.Session, since: float) -> float:
    """Page views until no premium text is served; seconds from ``since``."""
    while time.monotonic() - since < LIVENESS:
        if leaks(page(stack, browser)) == []:
            return time.monotonic() - since
        time.sleep(0.05)
    raise AssertionError(f"premium text still served {LIVENESS:.0f} s after the change")


def stripe_client(stack: Any) -> stripe.StripeClient:
    return stripe.StripeClient(STANDIN_API_KEY, base_addresses={"api": stack.standin.url})


def test_cancel_now(live_stack: Any, record_property: Any) -> None:
    browser = premium_reader(live_stack)
    sub = live_stack.standin.objects("subscription")[0]
    stripe_client(live_stack).v1.subscriptions.cancel(sub["id"])
    assert live_stack.standin.wait_for_webhooks(30)  # the service's answers to the webhooks
    record_property("seconds", round(seconds_to_teaser(live_stack, browser, time.monotonic()), 3))


def test_refund(live_stack: Any, record_property: Any) -> None:
    browser = premium_reader(live_stack)
    charge = live_stack.standin.objects("charge")[0]
    stripe_client(live_stack).v1.refunds.create(params={"charge": charge["id"]})
    assert live_stack.standin.wait_for_webhooks(30)
    record_property("seconds", round(seconds_to_teaser(live_stack, browser, time.monotonic()), 3))


def test_eviction(live_stack: Any, record_property: Any) -> None:
    browser = premium_reader(live_stack)  # Laptop, the least recently used of six
    for i in range(5):
        login = requests.post(
            live_stack.service.url + "/api/v1/sessions",
            json={"email": "reader@example.com", "password": PASSWORD, "device_name": f"D{i}"},
            timeout=10,
        )
        assert login.status_code == 201
    changed = time.monotonic()  # the response of the login that evicted the laptop
    record_property("seconds", round(seconds_to_teaser(live_stack, browser, changed), 3))


def test_remote_sign_out(live_stack: Any, record_property: Any) -> None:
    browser = premium_reader(live_stack)
    phone = requests.Session()
    assert (
        phone.post(
            live_stack.service.url + "/api/v1/sessions",
            json={"email": "reader@example.com", "password": PASSWORD, "device_name": "Phone"},
            timeout=10,
        ).status_code
        == 201
    )
    sessions = phone.get(live_stack.service.url + "/api/v1/sessions", timeout=10).json()
    laptop = next(s["id"] for s in sessions["sessions"] if s["device_name"] == "Laptop")
    answer = phone.delete(
        live_stack.service.url + f"/api/v1/sessions/{laptop}",
        headers={"Origin": live_stack.service.url},
        timeout=10,
    )
    assert answer.status_code == 204
    record_property("seconds", round(seconds_to_teaser(live_stack, browser, time.monotonic()), 3))


def test_password_reset(live_stack: Any, mailbox: Mailbox, record_property: Any) -> None:
    browser = premium_reader(live_stack)
    mailbox.clear()
    assert (
        requests.post(
            live_stack.service.url + "/api/v1/password-resets",
            json={"email": "reader@example.com"},
            timeout=10,
        ).status_code
        == 202
    )
    message = next(m for m in mailbox.wait_for(1, 30) if "Reset" in m["Subject"])
    done = requests.post(
        live_stack.service.url + "/api/v1/password-resets/confirm",
        json={"token": link_from(message, "/reset-password"), "password": "a new passphrase 42"},
        timeout=10,
    )
    assert done.status_code == 200
    record_property("seconds", round(seconds_to_teaser(live_stack, browser, time.monotonic()), 3))
