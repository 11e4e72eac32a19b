"""The news site's offline token cache, at the real token lifetime (issue 11: every live test
set a 2-3 s lifetime, below the site's 30 s renew window, so the cached path never ran).

A controlled clock on the site's side moves time; the service keeps the real one."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests

from article_site import readers
from tests.conftest import PASSWORD
from tests.functional.test_article_site import PATHS, leaks, sign_up_and_log_in, subscribe

TOKEN_PATH = "/api/v1/entitlements/token"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {}  # the real ENTITLEMENT_TTL (300 s)


class SiteClock:
    """``time`` as the site's reader module sees it: the real clock plus an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def token_requests(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == "paywall.access" and getattr(record, "path", None) == TOKEN_PATH
    )


def test_the_site_reads_offline_until_the_renew_window_then_asks_again(
    live_stack: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="paywall.access")
    clock = SiteClock()
    monkeypatch.setattr(readers, "time", clock)
    ttl = live_stack.service.app.config["ENTITLEMENT_TTL"]
    assert ttl > readers.RENEW_BEFORE + 60  # the cached path exists at this lifetime
    laptop = sign_up_and_log_in(live_stack)
    subscribe(live_stack, laptop)
    article = live_stack.site.url + PATHS[0]

    assert leaks(laptop.get(article, timeout=10).text)
    asked = token_requests(caplog)
    assert asked >= 1
    # Views inside the lifetime are decided offline: no request reaches the service.
    for offset in (0, 60, ttl - readers.RENEW_BEFORE - 5):
        clock.offset = offset
        assert leaks(laptop.get(article, timeout=10).text), offset
    assert token_requests(caplog) == asked

    # The device is signed out elsewhere.
    phone = requests.Session()
    phone.post(
        live_stack.service.url + "/api/v1/sessions",
        json={"email": "reader@example.com", "password": PASSWORD, "device_name": "Phone"},
        timeout=10,
    )
    laptop_id = next(
        s["id"]
        for s in phone.get(live_stack.service.url + "/api/v1/sessions", timeout=10).json()[
            "sessions"
        ]
        if s["device_name"] == "Laptop"
    )
    phone.delete(
        live_stack.service.url + f"/api/v1/sessions/{laptop_id}",
        headers={"Origin": live_stack.service.url},
        timeout=10,
    )
    # The site follows the revocation feed (issue 9): within seconds its watcher holds the
    # sign-out, the next view asks the service, the service refuses, the text is gone, long
    # before the renew window.
    deadline = time.monotonic() + 60
    page = laptop.get(article, timeout=10).text
    while leaks(page) and time.monotonic() < deadline:
        time.sleep(0.05)
        page = laptop.get(article, timeout=10).text
    assert leaks(page) == []
    assert token_requests(caplog) == asked + 1
    assert "You were signed out on this device from another device." in page
