"""Journey 1: an anonymous reader, with and without JavaScript, gets the teaser and the subscribe
box; the premium paragraphs are nowhere in what the browser received."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (
    ARTICLE,
    PROMISES,
    article_url,
    expect,
    expect_teaser_only,
    premium_leaks,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_anonymous_reader_sees_the_teaser_and_the_subscribe_box(
    live_stack: Any, new_context: Any, screenshot: Any, javascript: bool
) -> None:
    context = new_context(java_script_enabled=javascript)
    page = context.new_page()
    bodies: list[str] = []  # every response body the browser got (read before navigating on)
    page.on("response", lambda r: None if 300 <= r.status < 400 else bodies.append(r.text()))

    page.goto(live_stack.site.url + "/")
    page.locator("#lead-story").click()
    expect(page).to_have_url(article_url(live_stack))
    expect(page.locator("#headline")).to_have_text(ARTICLE.headline)

    expect_teaser_only(page)
    for paragraph in ARTICLE.teaser:
        expect(page.get_by_text(paragraph, exact=True)).to_be_visible()
    paywall = page.locator("#paywall")
    expect(paywall.get_by_role("heading")).to_have_text("Subscribe to keep reading")
    expect(paywall.locator("li")).to_have_text(list(PROMISES))
    for button in ("#subscribe", "#signup", "#login"):
        expect(paywall.locator(button)).to_be_visible()
    expect(page.locator("#top-login")).to_be_visible()
    expect(page.locator("#notice")).to_have_count(0)

    # Nothing premium in any response the browser received, either.
    assert len(bodies) >= 2, "front page and article expected"
    assert [leak for body in bodies for leak in premium_leaks(body)] == []
    screenshot(page)
