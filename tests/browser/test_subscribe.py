"""Journeys 2 and 3: a reader signs up, logs in and subscribes through the stand-in's hosted
Checkout page; a good card opens the whole article, a declined one leaves only the teaser."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import (
    ARTICLE,
    DECLINE_CARD,
    EMAIL,
    SUCCESS_CARD,
    article_url,
    expect,
    expect_full_article,
    expect_teaser_only,
    pay,
    sign_up_in_browser,
)

pytestmark = pytest.mark.browser


def start_subscribing_from_the_article(page: Any, stack: Any) -> None:
    """An anonymous reader on the article presses Subscribe, signs up and logs in, and lands
    on the account page with the plans."""
    page.goto(article_url(stack))
    expect_teaser_only(page)
    page.locator("#paywall #subscribe").click()
    sign_up_in_browser(page)
    expect(page.locator("#account-email")).to_have_text(EMAIL)
    expect(page.locator("#plan-status")).to_have_text("Free account.")


def test_reader_signs_up_logs_in_subscribes_and_reads_the_whole_article(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    page = new_context().new_page()
    start_subscribing_from_the_article(page, live_stack)

    page.locator("#subscribe-premium_monthly").click()
    expect(page.locator("#plan-name")).to_contain_text("Premium")
    pay(page, SUCCESS_CARD)

    # Checkout returns to the service, which asks Stripe and sends the reader to the news site.
    page.wait_for_url(re.compile("^" + re.escape(live_stack.site.url)))
    if page.url != article_url(live_stack):
        # The service forgot the article (see test_checkout_returns_to_the_article_...): the
        # reader finds it again from the front page.
        expect(page.locator("#lead-story")).to_be_visible()
        page.locator("#lead-story").click()
    expect(page).to_have_url(article_url(live_stack))
    expect_full_article(page)
    expect(page.locator("#account-link")).to_be_visible()

    assert live_stack.standin.wait_for_webhooks(10)
    page.goto(live_stack.service.url + "/")
    expect(page.locator("#plan-status")).to_contain_text("Premium")
    expect(page.locator("#manage-billing")).to_be_visible()
    page.locator("#to-site").click()
    page.locator("#lead-story").click()
    expect_full_article(page)
    screenshot(page)


def test_checkout_returns_to_the_article_the_anonymous_reader_started_from(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    page = new_context().new_page()
    start_subscribing_from_the_article(page, live_stack)
    page.locator("#subscribe-premium_monthly").click()
    pay(page, SUCCESS_CARD)
    page.wait_for_url(re.compile("^" + re.escape(live_stack.site.url)))
    screenshot(page)
    assert page.url == article_url(live_stack)


def test_free_reader_who_subscribes_from_the_article_reads_it_whole_on_return(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    page = new_context().new_page()
    page.goto(article_url(live_stack))
    page.locator("#paywall #login").click()
    sign_up_link = page.get_by_role("link", name="Create an account")
    sign_up_link.click()
    sign_up_in_browser(page)
    expect(page).to_have_url(article_url(live_stack))
    expect_teaser_only(page)  # a signed-in free reader (the site caches this answer)

    page.locator("#paywall #subscribe").click()
    page.locator("#subscribe-premium_monthly").click()
    pay(page, SUCCESS_CARD)
    expect(page).to_have_url(article_url(live_stack))
    assert live_stack.standin.wait_for_webhooks(10)
    page.reload()
    screenshot(page)
    # Server-rendered: what the page has now is all it will have; no need to wait.
    assert page.locator(".premium").count() == len(ARTICLE.premium)


def test_declined_card_is_refused_on_checkout_and_the_article_stays_a_teaser(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    page = new_context().new_page()
    start_subscribing_from_the_article(page, live_stack)
    page.locator("#subscribe-premium_monthly").click()

    pay(page, DECLINE_CARD)
    expect(page.locator("#error")).to_have_text("Your card was declined.")
    expect(page).to_have_url(re.compile(r"/checkout/cs_"))
    expect(page.locator("#card-number")).to_be_editable()  # the reader may try another card
    screenshot(page, "-checkout")
    assert live_stack.standin.wait_for_webhooks(10)
    assert live_stack.standin.objects("subscription") == []

    page.goto(live_stack.service.url + "/")
    expect(page.locator("#plan-status")).to_have_text("Free account.")
    expect(page.locator("#subscribe-premium_monthly")).to_be_visible()
    page.locator("#to-site").click()
    page.locator("#lead-story").click()
    expect(page.locator("#site-logout")).to_be_visible()  # signed in, but not entitled
    expect_teaser_only(page)
    expect(page.locator("#notice")).to_have_count(0)
    screenshot(page)
