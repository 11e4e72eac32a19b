"""A subscriber's cookie pair (``paywall_session`` and the site's token cookie) copied into a
second browser: both read until the session rotates; once the new value has been used and the
grace has passed, the copy's next view ends the session (reuse detection) and no browser reads
premium any more; each is told why.

Time passes by moving the stored session times back (as the clock moving on would)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (
    article_url,
    expect,
    expect_full_article,
    expect_teaser_only,
    log_in_by_api,
    sign_up_by_api,
)
from tests.browser.test_device_limit import subscribe_by_api
from tests.functional.test_session_rotation import GRACE, INTERVAL, advance

pytestmark = pytest.mark.browser

COPIED_NOTICE = (
    "You were signed out because this sign-in was copied and used on another device. "
    "Log in again, and change your password if that was not you."
)


@pytest.fixture
def app_config() -> dict[str, Any]:
    # Tokens always under 30 s from expiry: every page view renews from the service.
    return {
        "ENTITLEMENT_TTL": 3,
        "SESSION_ROTATION_INTERVAL": INTERVAL,
        "SESSION_ROTATION_GRACE": GRACE,
    }


def session_cookie(context: Any, stack: Any) -> str:
    return next(
        c["value"] for c in context.cookies(stack.site.url) if c["name"] == "paywall_session"
    )


def test_a_copied_cookie_pair_reads_on_one_browser_at_most_after_rotation_and_grace(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    owner = new_context()
    sign_up_by_api(owner, live_stack)
    log_in_by_api(owner, live_stack, "Laptop")
    subscribe_by_api(owner, live_stack)
    owner_page = owner.new_page()
    owner_page.goto(article_url(live_stack))
    expect_full_article(owner_page)

    copy = new_context()
    copy.add_cookies(owner.cookies())  # the session cookie and the site's token cookie
    copy_page = copy.new_page()
    copy_page.goto(article_url(live_stack))
    expect_full_article(copy_page)
    copied_value = session_cookie(copy, live_stack)

    advance(live_stack.service.app, INTERVAL + 1)
    owner_page.reload()
    expect_full_article(owner_page)
    rotated = session_cookie(owner, live_stack)
    assert rotated != copied_value  # the site wrote the rotated value into the owner's cookie
    owner_page.reload()  # the new value is used
    expect_full_article(owner_page)
    copy_page.reload()  # within the grace the old value still works (parallel tabs)
    expect_full_article(copy_page)
    assert session_cookie(copy, live_stack) == copied_value

    advance(live_stack.service.app, GRACE + 1)
    copy_page.reload()
    expect_teaser_only(copy_page)
    expect(copy_page.locator("#notice")).to_have_text(COPIED_NOTICE)
    owner_page.reload()
    expect_teaser_only(owner_page)
    expect(owner_page.locator("#notice")).to_have_text(COPIED_NOTICE)
    screenshot(copy_page, "-copy")
    screenshot(owner_page)

    # Neither reads premium any more: the session ended for both copies.
    for page in (owner_page, copy_page):
        page.goto(article_url(live_stack))
        expect_teaser_only(page)
        expect(page.locator("#top-login")).to_be_visible()
