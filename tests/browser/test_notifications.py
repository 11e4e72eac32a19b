"""Journey: a Premium reader presses "Get notified of new stories"; a story is published; the push
stand-in decrypts it; Chromium's service worker shows it. Headless Chromium cannot reach real push
services, so ``pushManager.subscribe`` is stubbed with a stand-in subscription and the push is
handed to the service worker through the DevTools protocol (``ServiceWorker.deliverPushMessage``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from push_standin import PushStandIn
from tests.browser.conftest import article_url, expect, log_in_by_api, sign_up_by_api

pytestmark = pytest.mark.browser

PUBLISHER_KEY = "pk_test_" + secrets.token_hex(24)

STUB = """(() => {
  const fake = %s;
  let current = null;
  PushManager.prototype.subscribe = async function (options) {
    window.__serverKeyLength = new Uint8Array(options.applicationServerKey).length;
    current = { endpoint: fake.endpoint, expirationTime: null, toJSON: () => fake,
                unsubscribe: async () => { current = null; return true; } };
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
})();"""

SHOWN = """navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((list) =>
  list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url })))"""


@pytest.fixture(scope="module")
def push_server() -> Iterator[PushStandIn]:
    with PushStandIn() as server:
        yield server


@pytest.fixture
def app_config(push_server: PushStandIn) -> dict[str, Any]:
    return {"PUSH_ALLOWED_ORIGINS": [push_server.url], "PUBLISHER_API_KEYS": [PUBLISHER_KEY]}


def premium_reader(context: Any, stack: Any, email: str) -> None:
    sign_up_by_api(context, stack, email)
    log_in_by_api(context, stack, "Chromium", email)
    response = context.request.post(
        stack.service.url + "/api/v1/billing/checkout", data={"plan": "premium_monthly"}
    )
    assert response.status == 201, response.text()
    stack.standin.complete_checkout(response.json()["url"].rstrip("/").rsplit("/", 1)[1])
    assert stack.standin.wait_for_webhooks(10)


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_premium_reader_gets_notified_and_the_service_worker_shows_the_story(
    live_stack: Any, new_context: Any, push_server: PushStandIn, screenshot: Any
) -> None:
    push_server.reset()
    site = live_stack.site.url
    context = new_context()
    context.grant_permissions(["notifications"], origin=site)
    premium_reader(context, live_stack, "notified@example.com")
    subscription = push_server.new_subscription()
    context.add_init_script(STUB % json.dumps(subscription))
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    # Only an activated worker handles a push: delivering to a registration whose worker is
    # still installing is dropped silently (seen as a flake on a loaded machine).
    activated: list[str] = []
    cdp.on(
        "ServiceWorker.workerVersionUpdated",
        lambda event: activated.extend(
            v["registrationId"] for v in event["versions"] if v.get("status") == "activated"
        ),
    )
    cdp.send("ServiceWorker.enable")

    page.goto(article_url(live_stack))
    button = page.locator("#notify-toggle")
    expect(button).to_have_text("Get notified of new stories")
    assert page.evaluate("window.__serverKeyLength") is None  # nothing before the click
    button.click()
    expect(page.locator("#notify-status")).to_contain_text("Notifications are on for:")
    assert page.evaluate("window.__serverKeyLength") == 65  # the service's VAPID key

    story_url = article_url(live_stack)
    response = requests.post(
        live_stack.service.url + "/api/v1/stories",
        json={
            "id": "browser-1",
            "title": "Talks resume in Brussels",
            "url": story_url,
            "summary": "Negotiators meet again.",
            "topics": ["world"],
        },
        headers={"Authorization": f"Bearer {PUBLISHER_KEY}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    [message] = wait_for(lambda: push_server.messages(subscription["endpoint"]))
    assert message.json()["title"] == "Talks resume in Brussels"

    assert page.evaluate("navigator.serviceWorker.ready.then((r) => !!r.active)")
    assert wait_for(lambda: activated, timeout=30), "no activated service worker"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": site, "registrationId": activated[-1], "data": message.payload.decode()},
    )
    shown = wait_for(lambda: page.evaluate(SHOWN), timeout=30)
    assert shown == [
        {
            "title": "Talks resume in Brussels",
            "body": "Negotiators meet again.",
            "tag": "browser-1",
            "url": story_url,
        }
    ]
    screenshot(page)

    button.click()
    expect(page.locator("#notify-status")).to_have_text("Notifications are off.")
    listed = context.request.get(
        live_stack.service.url + "/api/v1/notifications/push-subscriptions"
    )
    assert listed.json()["subscriptions"] == []


def test_reader_without_the_feature_sees_which_plan_brings_it(
    live_stack: Any, new_context: Any
) -> None:
    context = new_context()
    sign_up_by_api(context, live_stack, "free@example.com")
    log_in_by_api(context, live_stack, "Chromium", "free@example.com")
    page = context.new_page()
    page.goto(article_url(live_stack))
    expect(page.locator("#notify-upsell")).to_have_text("Story notifications come with Premium.")
    expect(page.locator("#notify-toggle")).to_have_count(0)
