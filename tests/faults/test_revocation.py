"""After a device sign-out, a cancelled subscription or a refund: no new premium token, online
verify says revoked at once, and within the token lifetime the news site shows only the teaser."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import stripe

from tests.conftest import STANDIN_API_KEY
from tests.functional.test_article_site import (
    PATHS,
    leaks,
    premium_fragments,
    sign_up_and_log_in,
    subscribe,
)

TTL = 2


@pytest.fixture
def app_config() -> dict:
    return {"ENTITLEMENT_TTL": TTL}


def token_of(stack: Any, browser: requests.Session) -> requests.Response:
    return browser.post(
        stack.service.url + "/api/v1/entitlements/token", headers={"Origin": stack.service.url}
    )


def verify_online(stack: Any, token: str) -> dict:
    return requests.post(
        stack.service.url + "/api/v1/entitlements/verify",
        json={"token": token},
        headers={"Authorization": f"Bearer {stack.publisher_key}"},
        timeout=5,
    ).json()


def premium_reader(stack: Any) -> tuple[requests.Session, str]:
    browser = sign_up_and_log_in(stack)
    subscribe(stack, browser)
    assert leaks(browser.get(stack.site.url + PATHS[0], timeout=5).text) == premium_fragments()
    token = token_of(stack, browser).json()["token"]
    assert verify_online(stack, token)["valid"] is True
    return browser, token


def stripe_client(stack: Any) -> stripe.StripeClient:
    return stripe.StripeClient(STANDIN_API_KEY, base_addresses={"api": stack.standin.url})


def assert_teaser_within_ttl(stack: Any, browser: requests.Session) -> None:
    time.sleep(TTL + 0.5)
    assert leaks(browser.get(stack.site.url + PATHS[0], timeout=5).text) == []


def test_after_a_device_sign_out(live_stack: Any) -> None:
    browser, token = premium_reader(live_stack)
    session_value = browser.cookies["paywall_session"]
    assert (
        browser.delete(
            live_stack.service.url + "/api/v1/sessions/current",
            headers={"Origin": live_stack.service.url},
        ).status_code
        == 204
    )
    assert verify_online(live_stack, token) == {"valid": False, "reason": "revoked"}
    refused = requests.post(
        live_stack.service.url + "/api/v1/entitlements/token",
        headers={"Authorization": f"Bearer {session_value}"},
        timeout=5,
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "session_revoked"
    assert_teaser_within_ttl(live_stack, browser)


def test_after_a_cancellation_in_the_dashboard(live_stack: Any) -> None:
    browser, token = premium_reader(live_stack)
    sub = live_stack.standin.objects("subscription")[0]
    stripe_client(live_stack).v1.subscriptions.cancel(sub["id"])
    assert live_stack.standin.wait_for_webhooks(10)
    assert verify_online(live_stack, token) == {"valid": False, "reason": "revoked"}
    fresh = token_of(live_stack, browser).json()
    assert fresh["entitlements"]["features"] == []
    assert_teaser_within_ttl(live_stack, browser)


def test_after_a_refund(live_stack: Any) -> None:
    browser, token = premium_reader(live_stack)
    charge = live_stack.standin.objects("charge")[0]
    stripe_client(live_stack).v1.refunds.create(params={"charge": charge["id"]})
    assert live_stack.standin.wait_for_webhooks(10)
    assert verify_online(live_stack, token) == {"valid": False, "reason": "revoked"}
    assert token_of(live_stack, browser).json()["entitlements"]["features"] == []
    assert_teaser_within_ttl(live_stack, browser)
