"""The news site applies session rotations to the reader's cookie (issue 9 §4): the value the
service hands back when it rotates a session becomes the browser's ``paywall_session`` cookie,
with the configured cookie domain, and the renewed token is bound to it. A copied cookie pair
stops reading once the rotation interval and its grace have passed."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from flask.testing import FlaskClient

from article_site import create_app as create_site
from article_site.content import articles
from article_site.readers import TOKEN_COOKIE, token_cookie
from paywall.entitlements.verifier import Verifier
from tests.functional.test_article_site import leaks, sign_up_and_log_in, subscribe
from tests.functional.test_session_rotation import GRACE, INTERVAL, advance

ARTICLE_PATH = "/news/" + next(iter(articles()))
HOST = "www.news.test"
SITE = "http://" + HOST
DOMAIN = "news.test"
COOKIE = "paywall_session"
SITE_SECRET = secrets.token_hex(16)


@pytest.fixture
def app_config() -> dict[str, Any]:
    # A token that always has under 30 s left: every page view renews it from the service.
    return {
        "ENTITLEMENT_TTL": 3,
        "SESSION_ROTATION_INTERVAL": INTERVAL,
        "SESSION_ROTATION_GRACE": GRACE,
    }


def site_browser(stack: Any, value: str) -> FlaskClient:
    """A browser on www.news.test holding the service's session cookie for .news.test."""
    site = create_site(
        {
            "PAYWALL_URL": stack.service.url,
            "SECRET_KEY": SITE_SECRET,
            "DEVICE_COOKIE_DOMAIN": DOMAIN,
            "TESTING": True,
        }
    )
    browser = site.test_client()
    browser.set_cookie(COOKIE, value, domain=DOMAIN, origin_only=False)
    return browser


def reads_premium(browser: FlaskClient) -> tuple[bool, str]:
    page = browser.get(ARTICLE_PATH, base_url=SITE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    return bool(leaks(text)), text


def test_a_rotated_value_becomes_the_cookie_with_the_cookie_domain(live_stack: Any) -> None:
    login = sign_up_and_log_in(live_stack)
    subscribe(live_stack, login)
    old = login.cookies[COOKIE]
    browser = site_browser(live_stack, old)
    assert reads_premium(browser)[0]
    assert browser.get_cookie(COOKIE, domain=DOMAIN).value == old  # nothing rotated yet

    advance(live_stack.service.app, INTERVAL + 1)
    page = browser.get(ARTICLE_PATH, base_url=SITE)
    assert leaks(page.get_data(as_text=True))
    header = next(h for h in page.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "="))
    assert f"Domain={DOMAIN}" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Path=/" in header
    new = browser.get_cookie(COOKIE, domain=DOMAIN).value
    assert new != old
    # The renewed token is bound to the new value, and the next view uses the new value.
    token = token_cookie(SITE_SECRET).loads(browser.get_cookie(TOKEN_COOKIE, domain=HOST).value)
    jwks = live_stack.service.app.test_client().get("/.well-known/jwks.json").get_json()
    assert Verifier(jwks).verify(token, session=new)["sub"]
    assert reads_premium(browser)[0]
    assert browser.get_cookie(COOKIE, domain=DOMAIN).value == new


def test_a_copied_cookie_pair_stops_reading_after_the_interval_and_grace(
    live_stack: Any,
) -> None:
    login = sign_up_and_log_in(live_stack)
    subscribe(live_stack, login)
    value = login.cookies[COOKIE]
    owner = site_browser(live_stack, value)
    assert reads_premium(owner)[0]
    copy = site_browser(live_stack, value)
    copy.set_cookie(
        TOKEN_COOKIE, owner.get_cookie(TOKEN_COOKIE, domain=HOST).value, domain=HOST
    )  # the whole cookie pair
    assert reads_premium(copy)[0]

    advance(live_stack.service.app, INTERVAL + 1)
    assert reads_premium(owner)[0]  # rotated: the owner's cookie follows
    assert reads_premium(owner)[0]  # and the new value is used
    assert reads_premium(copy)[0]  # the copy still reads within the grace
    advance(live_stack.service.app, GRACE + 1)
    premium, text = reads_premium(copy)
    assert not premium
    assert "copied and used on another device" in text
    assert copy.get_cookie(COOKIE, domain=DOMAIN) is None  # the notice shows once
    # The session ended for every copy (reuse detection): at most one reads, here none.
    premium, text = reads_premium(owner)
    assert not premium and "copied and used on another device" in text
