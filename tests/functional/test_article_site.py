"""The news site decides on its server, offline, before rendering: premium text never reaches a
reader who may not read it, in any representation, whatever the user agent or referrer."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from article_site.content import articles
from tests.conftest import PASSWORD

ARTICLE = next(iter(articles().values()))
PREMIUM = ARTICLE.premium
PATHS = [
    f"/news/{ARTICLE.slug}",
    f"/news/{ARTICLE.slug}.json",
    f"/news/{ARTICLE.slug}/print",
    "/feed.xml",
    "/",
]
DISGUISES = [
    {},
    {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
    {"Referer": "https://www.google.com/"},
    {"User-Agent": "facebookexternalhit/1.1", "Accept": "application/json"},
]


def premium_fragments() -> list[str]:
    # A distinctive slice of each premium paragraph, as it would appear in HTML or JSON.
    return [p[10:60] for p in PREMIUM]


def leaks(text: str) -> list[str]:
    import html

    unescaped = html.unescape(text)
    return [frag for frag in premium_fragments() if frag in unescaped or frag in text]


def sign_up_and_log_in(stack: Any, email: str = "reader@example.com") -> requests.Session:
    browser = requests.Session()
    assert (
        browser.post(
            stack.service.url + "/api/v1/accounts", json={"email": email, "password": PASSWORD}
        ).status_code
        == 202
    )
    login = browser.post(
        stack.service.url + "/api/v1/sessions",
        json={"email": email, "password": PASSWORD, "device_name": "Laptop"},
    )
    assert login.status_code == 201
    return browser


def subscribe(stack: Any, browser: requests.Session) -> None:
    url = browser.post(
        stack.service.url + "/api/v1/billing/checkout",
        json={"plan": "premium_monthly"},
        headers={"Origin": stack.service.url},
    ).json()["url"]
    stack.standin.complete_checkout(url.rsplit("/", 1)[1])
    assert stack.standin.wait_for_webhooks(10)


@pytest.mark.parametrize("headers", DISGUISES, ids=["plain", "googlebot", "google-referer", "fb"])
def test_anonymous_readers_never_receive_premium_text(live_stack: Any, headers: dict) -> None:
    for path in PATHS:
        response = requests.get(live_stack.site.url + path, headers=headers, timeout=5)
        assert response.status_code == 200, path
        assert leaks(response.text) == [], (path, headers)
    page = requests.get(live_stack.site.url + PATHS[0], timeout=5).text
    for promise in (
        "Never miss a story with notifications",
        "Gain full access to our premium content",
        "Browse free from up to 5 devices at once",
    ):
        assert promise in page
    assert ARTICLE.teaser[0][:60] in page.replace("&#39;", "'")


def test_free_reader_gets_the_teaser_in_every_format(live_stack: Any) -> None:
    browser = sign_up_and_log_in(live_stack)
    for headers in DISGUISES:
        for path in PATHS:
            response = browser.get(live_stack.site.url + path, headers=headers, timeout=5)
            assert leaks(response.text) == [], (path, headers)
    data = browser.get(live_stack.site.url + PATHS[1], timeout=5).json()
    assert data["entitled"] is False and data["truncated"] is True
    assert len(data["paragraphs"]) == len(ARTICLE.teaser)


def test_subscriber_reads_everything_with_private_no_store(live_stack: Any) -> None:
    browser = sign_up_and_log_in(live_stack)
    subscribe(live_stack, browser)
    page = browser.get(live_stack.site.url + PATHS[0], timeout=5)
    assert leaks(page.text) == premium_fragments()
    assert page.headers["Cache-Control"] == "private, no-store"
    assert "Subscribe to keep reading" not in page.text
    data = browser.get(live_stack.site.url + PATHS[1], timeout=5)
    assert data.json()["entitled"] is True and data.headers["Cache-Control"] == "private, no-store"
    assert len(data.json()["paragraphs"]) == len(ARTICLE.paragraphs)
    assert "site_entitlement" in browser.cookies


def test_a_forged_token_cookie_gets_nothing(live_stack: Any) -> None:
    browser = requests.Session()
    browser.cookies.set("paywall_session", "made-up-session-value")
    browser.cookies.set("site_entitlement", "eyJmZWF0dXJlcyI6WyJwcmVtaXVtX2NvbnRlbnQiXX0.bad|x")
    page = browser.get(live_stack.site.url + PATHS[0], timeout=5)
    assert leaks(page.text) == []


@pytest.fixture
def app_config() -> dict:
    return {"ENTITLEMENT_TTL": 2}


def test_signed_out_device_loses_premium_within_the_token_lifetime_and_is_told_why(
    live_stack: Any,
) -> None:
    import time

    laptop = sign_up_and_log_in(live_stack)
    subscribe(live_stack, laptop)
    assert leaks(laptop.get(live_stack.site.url + PATHS[0], timeout=5).text)
    phone = requests.Session()
    phone.post(
        live_stack.service.url + "/api/v1/sessions",
        json={"email": "reader@example.com", "password": PASSWORD, "device_name": "Phone"},
    )
    laptop_id = next(
        s["id"]
        for s in phone.get(live_stack.service.url + "/api/v1/sessions").json()["sessions"]
        if s["device_name"] == "Laptop"
    )
    phone.delete(
        live_stack.service.url + f"/api/v1/sessions/{laptop_id}",
        headers={"Origin": live_stack.service.url},
    )
    time.sleep(2.5)  # the token lifetime in this test
    page = laptop.get(live_stack.site.url + PATHS[0], timeout=5).text
    assert leaks(page) == []
    assert "You were signed out on this device from another device." in page


def test_a_device_signed_out_by_a_password_change_is_told_so_on_the_site(
    live_stack: Any,
) -> None:
    laptop = sign_up_and_log_in(live_stack)
    assert laptop.get(live_stack.site.url + "/", timeout=5).status_code == 200
    phone = requests.Session()
    phone.post(
        live_stack.service.url + "/api/v1/sessions",
        json={"email": "reader@example.com", "password": PASSWORD, "device_name": "Phone"},
    )
    changed = phone.post(
        live_stack.service.url + "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "an entirely new passphrase"},
        headers={"Origin": live_stack.service.url},
    )
    assert changed.status_code == 200
    laptop.cookies.pop("site_entitlement", None)  # no cached token: the site asks at once
    page = laptop.get(live_stack.site.url + "/", timeout=5).text
    assert "signed out on this device because your password was changed" in page
