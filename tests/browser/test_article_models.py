"""Issue 14 in Chromium: the meter banner counting down to the wall, the registration wall's
round trip (sign up, verify, back on the article), and gifting: a subscriber makes a link, a
second browser without an account reads the whole article with it; a link used up or expired
shows the teaser and says why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from article_site.content import articles
from paywall.clock import utcnow
from paywall.extensions import db
from paywall.gifts.models import Gift
from tests.browser.conftest import (
    EMAIL,
    article_url,
    expect,
    expect_full_article,
    expect_teaser_only,
    log_in_by_api,
    sign_up_by_api,
    sign_up_in_browser,
)
from tests.conftest import body_of

pytestmark = pytest.mark.browser

METERED = [a for a in articles().values() if a.access_level == "metered"]
REGISTERED = next(a for a in articles().values() if a.access_level == "registered")


@pytest.fixture
def app_config() -> dict[str, Any]:
    # One browser per gift link, so the third browser meets a used-up link.
    return {"GIFT_MAX_READERS": 1}


def body_texts(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#article-body p").all_inner_texts()]


def test_the_meter_banner_counts_down_then_the_wall(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    context = new_context()
    page = context.new_page()
    for article, banner in zip(
        METERED[:3],
        (
            "2 free articles left this month",
            "1 free article left this month",
            "0 free articles left this month",
        ),
        strict=True,
    ):
        page.goto(live_stack.site.url + f"/news/{article.slug}")
        expect(page.locator("#level")).to_have_text("metered")
        expect(page.locator("#meter-banner")).to_have_text(banner)
        assert body_texts(page) == list(article.paragraphs)
    over = METERED[3]
    page.goto(live_stack.site.url + f"/news/{over.slug}")
    expect(page.locator("#meter-banner")).to_have_count(0)
    expect(page.locator("#paywall")).to_be_visible()
    expect(page.locator("#paywall-reason")).to_contain_text(
        "You have read your 3 free articles this month."
    )
    assert body_texts(page) == list(over.teaser)
    assert not any(p[10:60] in page.content() for p in over.premium)
    screenshot(page)
    # An article already read this month stays readable at the limit.
    page.goto(live_stack.site.url + f"/news/{METERED[0].slug}")
    assert body_texts(page) == list(METERED[0].paragraphs)


def test_the_registration_wall_round_trip(
    live_stack: Any, new_context: Any, screenshot: Any, mailbox: Any
) -> None:
    here = live_stack.site.url + f"/news/{REGISTERED.slug}"
    page = new_context().new_page()
    page.goto(here)
    expect(page.locator("#level")).to_have_text("registered")
    expect(page.locator("#paywall-reason")).to_have_text("Create a free account to read this")
    assert body_texts(page) == list(REGISTERED.teaser)
    page.locator("#paywall #signup").click()
    sign_up_in_browser(page)
    expect(page).to_have_url(here)
    assert body_texts(page) == list(REGISTERED.paragraphs)
    expect(page.locator("#paywall")).to_have_count(0)
    # The verification link from the email also leads back to the article.
    message = mailbox.wait_for(1)[0]
    link = next(w for w in body_of(message).split() if "/verify-email?token=" in w)
    page.goto(link)
    page.locator("#confirm").click()
    expect(page.locator("body")).to_contain_text("Address confirmed")
    page.locator(f'a[href="{here}"]').first.click()
    expect(page).to_have_url(here)
    assert body_texts(page) == list(REGISTERED.paragraphs)
    screenshot(page)


def grant_premium(stack: Any, email: str = EMAIL) -> None:
    until = (utcnow() + timedelta(days=60)).date().isoformat()
    result = stack.service.app.test_cli_runner().invoke(
        args=["access", "grant", email, "--features", "premium_content", "--until", until,
              "--reason", "browser test subscriber", "--by", "tests"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_a_subscriber_gifts_the_article_and_a_friend_without_an_account_reads_it(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    subscriber = new_context()
    sign_up_by_api(subscriber, live_stack)
    log_in_by_api(subscriber, live_stack, "Laptop")
    grant_premium(live_stack)
    page = subscriber.new_page()
    page.goto(article_url(live_stack))
    expect_full_article(page)
    page.locator("#gift-button").click()
    expect(page.locator("#gift-made")).to_contain_text("Anyone with this link can read")
    expect(page.locator("#gift-remaining")).to_have_text("9 gift articles left this month.")
    url = page.locator("#gift-url").input_value()
    assert url.startswith(article_url(live_stack) + "?gift=")
    screenshot(page, "-subscriber")

    friend = new_context().new_page()  # another browser, no account, no cookies
    friend.goto(url)
    expect(friend.locator("#gift-banner")).to_contain_text("A subscriber shared this article")
    expect_full_article(friend)
    expect(friend.locator("#gift-button")).to_have_count(0)
    screenshot(friend, "-friend")
    # The link opens nothing else: the same gift on another article is the teaser.
    token = url.split("?gift=", 1)[1]
    friend.goto(live_stack.site.url + f"/news/{REGISTERED.slug}?gift={token}")
    expect(friend.locator("#gift-notice")).to_contain_text("This gift link is for another article.")
    assert body_texts(friend) == list(REGISTERED.teaser)

    # A third browser: the link has been opened by as many readers as it allows.
    stranger = new_context().new_page()
    stranger.goto(url)
    expect(stranger.locator("#gift-notice")).to_contain_text(
        "already been opened by as many readers as it allows"
    )
    expect_teaser_only(stranger)
    screenshot(stranger, "-used-up")

    # Time passes: the friend's link has expired.
    with live_stack.service.app.app_context():
        for gift in db.session.query(Gift).all():
            gift.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    friend.goto(url)
    expect(friend.locator("#gift-notice")).to_contain_text("This gift link has expired.")
    expect_teaser_only(friend)
    screenshot(friend, "-expired")
