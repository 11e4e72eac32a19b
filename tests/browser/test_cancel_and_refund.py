"""Journey 5: a subscriber cancels in the billing portal and keeps reading until the period
ends; when finance refunds the payment, access ends at the reader's next view."""

from __future__ import annotations

import re
from typing import Any

import pytest
import stripe

from tests.browser.conftest import (
    ARTICLE,
    SUCCESS_CARD,
    article_url,
    expect,
    expect_full_article,
    expect_teaser_only,
    log_in_by_api,
    pay,
    sign_up_by_api,
)
from tests.conftest import STANDIN_API_KEY

pytestmark = pytest.mark.browser

TTL = 3  # seconds; the site renews a token with under 30 s left, so every view asks the service


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"ENTITLEMENT_TTL": TTL}


def test_cancelled_subscriber_reads_until_period_end_and_a_refund_ends_access(
    live_stack: Any, new_context: Any, screenshot: Any
) -> None:
    context = new_context()
    sign_up_by_api(context, live_stack)
    log_in_by_api(context, live_stack, "Laptop")
    page = context.new_page()
    page.goto(live_stack.service.url + "/")
    page.locator("#subscribe-premium_monthly").click()
    pay(page, SUCCESS_CARD)
    page.wait_for_url(re.compile("^" + re.escape(live_stack.site.url)))
    assert live_stack.standin.wait_for_webhooks(10)
    page.goto(article_url(live_stack))
    expect_full_article(page)

    # Account home -> Manage billing -> the stand-in's portal -> Cancel plan.
    page.locator("#account-link").click()
    expect(page.locator("#plan-status")).to_have_text(
        re.compile(r"^Your plan: Premium \(active\)\.$")
    )
    page.locator("#manage-billing").click()
    expect(page).to_have_url(re.compile(r"/portal/bps_"))
    expect(page.locator("#status")).to_have_text("active")
    expect(page.locator("#cancel-at-period-end")).to_have_text("no")
    period_end = page.locator("#period-end").inner_text()[:10]
    page.locator("#cancel").click()
    expect(page.locator("#notice")).to_have_text(
        "Your plan will be canceled at the end of the period."
    )
    expect(page.locator("#cancel-at-period-end")).to_have_text("yes")
    expect(page.locator("#resume-renewal")).to_be_visible()
    assert live_stack.standin.wait_for_webhooks(10)

    page.locator("#return").click()
    expect(page).to_have_url(live_stack.service.url + "/")
    expect(page.locator("#plan-status")).to_have_text(
        re.compile(rf"^Your plan: Premium \(active, ends {period_end}\)\.$")
    )

    # Still paid for: the whole article, on a token issued after the cancellation.
    page.locator("#to-site").click()
    page.locator("#lead-story").click()
    expect_full_article(page)
    screenshot(page, "-cancelled")

    # Finance refunds the payment; the reader's next views lose the premium text.
    charge = live_stack.standin.objects("charge")[0]
    finance = stripe.StripeClient(
        STANDIN_API_KEY, base_addresses={"api": live_stack.standin.url}, max_network_retries=0
    )
    finance.v1.refunds.create(params={"charge": charge["id"]})
    assert live_stack.standin.wait_for_webhooks(10)

    # The next view, with no waiting: the site renews its short token on every view and the
    # service refuses (how fast that is on a given machine is a figure for ``make bench``).
    page.reload()
    assert page.locator(".premium").count() == 0
    expect_teaser_only(page)
    expect(page.locator("#site-logout")).to_be_visible()  # still signed in, just not entitled
    assert page.locator("#article-body p").count() == len(ARTICLE.teaser)

    page.locator("#account-link").click()
    expect(page.locator("#plan-status")).to_have_text(
        re.compile(r"^Free account: your premium access ended because the payment was refunded")
    )
    page.goto(article_url(live_stack))
    expect_teaser_only(page)
    screenshot(page)
