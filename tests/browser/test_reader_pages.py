"""The reader's pages walked in Chromium at 1280 px and 390 px: the news site's front page and
top bar, plans compared, forms with errors, the account page (price, renewal, card, invoices),
a downgrade previewed and confirmed in the portal, devices, self-service pages, honest link
pages, a lapsed subscriber. axe-core (shipped inside axe-playwright-python, never fetched)
checks every page state; any serious or critical violation fails the test. Screenshots of each
state land in test-artifacts/browser/."""

from __future__ import annotations

import re
from typing import Any

import pytest
import stripe

from tests.browser.conftest import (
    SUCCESS_CARD,
    expect,
    log_in_by_api,
    pay,
    sign_up_by_api,
)
from tests.conftest import PASSWORD, STANDIN_API_KEY

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
BLOCKING = ("serious", "critical")


class Audit:
    """Runs axe on each page state and keeps a screenshot of it."""

    def __init__(self, screenshot: Any, label: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.screenshot = screenshot
        self.label = label
        self.problems: list[str] = []
        self.states: list[str] = []

    def check(self, page: Any, state: str) -> None:
        page.wait_for_load_state("load")
        self.screenshot(page, f"-{self.label}-{state}")
        results = self.axe.run(page)
        self.states.append(state)
        for violation in results.response["violations"]:
            if violation["impact"] in BLOCKING:
                targets = [", ".join(n["target"]) for n in violation["nodes"]][:3]
                self.problems.append(
                    f"{state}: {violation['id']} ({violation['impact']}) at {targets}: "
                    f"{violation['help']}"
                )
        assert no_sideways_scroll(page), f"{state}: the page scrolls sideways: " + str(
            page.evaluate(
                """[...document.querySelectorAll('body *')].filter(e =>
                    e.getBoundingClientRect().right > window.innerWidth + 1)
                    .slice(0, 5).map(e => e.outerHTML.slice(0, 120))"""
            )
        )

    def passed(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


def no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def one_line_each(page: Any, selector: str) -> list[str]:
    """The items in ``selector`` that wrap onto more than one line."""
    return list(
        page.evaluate(
            """(sel) => [...document.querySelectorAll(sel)].filter(e => {
                const lh = parseFloat(getComputedStyle(e).lineHeight) || 20;
                return e.getBoundingClientRect().height > lh * 1.6 + 8;
            }).map(e => e.textContent.trim())""",
            selector,
        )
    )


@pytest.mark.parametrize("device", list(WIDTHS))
def test_reader_pages_at_desktop_and_phone_widths_pass_axe(
    live_stack: Any, new_context: Any, screenshot: Any, device: str
) -> None:
    audit = Audit(screenshot, device)
    service, site = live_stack.service.url, live_stack.site.url
    context = new_context(viewport=WIDTHS[device])
    page = context.new_page()

    # The front page: stories with working links, a Subscribe button in the top bar.
    page.goto(site + "/")
    stories = page.locator("#stories .story h2 a")
    assert stories.count() >= 1
    expect(page.locator("#top-subscribe")).to_be_visible()
    assert one_line_each(page, ".topbar nav a, .topbar nav button") == []
    audit.check(page, "front")
    for href in [stories.nth(i).get_attribute("href") for i in range(stories.count())]:
        assert page.request.get(site + str(href)).status == 200

    # Plans compared, from the top bar's Subscribe.
    page.locator("#top-subscribe").click()
    expect(page.locator("h1")).to_have_text("Choose your plan")
    expect(page.locator("#plan-premium_yearly .price")).to_have_text("$90 / year — 2 months free")
    expect(page.locator("#plan-solo_monthly")).to_contain_text("Up to 2 devices at once")
    audit.check(page, "plans")

    # Sign-up with errors: a summary linked to the fields.
    page.goto(service + "/signup")
    page.locator("#email").fill("not-an-email")
    page.locator("#password").fill("short")
    page.locator("#signup").click()
    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    audit.check(page, "signup-errors")

    sign_up_by_api(context, live_stack)
    # Two devices signed in earlier (a downgrade below pushes the least recently used out).
    for name in ("Old tablet", "Old phone"):
        log_in_by_api(new_context(), live_stack, name)
    page.goto(service + "/login")
    page.locator("#email").fill("reader@example.com")
    page.locator("#password").fill("wrong password")
    page.locator("#login").click()
    expect(page.locator("#error-summary")).to_contain_text("not correct")
    audit.check(page, "login-error")

    # Subscribe from the plans page, pay, come back.
    page.locator("#password").fill(PASSWORD)
    page.locator("#login").click()
    page.goto(service + "/plans?next=" + site + "/")
    page.locator("#subscribe-premium_monthly").click()
    pay(page, SUCCESS_CARD)
    page.wait_for_url(re.compile("^" + re.escape(site)))
    assert live_stack.standin.wait_for_webhooks(10)
    expect(page.locator("#top-subscribe")).to_have_count(0)  # a subscriber is not asked
    audit.check(page, "front-subscriber")

    # The account page answers: price, renewal, card, invoices.
    page.goto(service + "/")
    expect(page.locator("#plan-price")).to_have_text("$9 / month")
    expect(page.locator("#renews-on")).to_be_visible()
    expect(page.locator("#payment-method")).to_contain_text("Visa ending in 4242")
    expect(page.locator("#invoices .invoice")).to_have_count(1)
    expect(page.locator("#invoices .invoice")).to_contain_text("Paid")
    audit.check(page, "account")

    # A downgrade to Solo (2 devices) previewed and confirmed.
    page.goto(service + "/plans")
    expect(page.locator("#current-plan")).to_be_visible()
    expect(page.locator("#plan-premium_monthly")).to_have_attribute("aria-current", "true")
    audit.check(page, "plans-subscriber")
    page.locator("#switch-solo_monthly").click()
    expect(page.locator("#consequences")).to_contain_text(
        "1 of your 3 devices will be signed out: Old tablet."
    )
    expect(page.locator("#consequences")).to_contain_text("Stops: Breaking-news notifications.")
    audit.check(page, "change-preview")
    page.locator("#confirm-change").click()
    expect(page).to_have_url(re.compile(r"/portal/bps_"))
    expect(page.locator("#confirm-plan")).to_contain_text("Premium Solo")
    page.locator("#confirm-switch").click()
    expect(page).to_have_url(service + "/")
    assert live_stack.standin.wait_for_webhooks(10)
    page.reload()
    expect(page.locator("#plan-price")).to_have_text("$5 / month")

    # Devices, and the self-service pages (with an error where there is a form).
    page.goto(service + "/devices")
    expect(page.locator("#device-list .device")).to_have_count(2)
    audit.check(page, "devices")
    page.goto(service + "/account/password")
    page.locator("#current_password").fill("wrong password")
    page.locator("#new_password").fill("a brand new passphrase")
    page.locator("#change-password").click()
    expect(page.locator("#current_password")).to_have_attribute("aria-invalid", "true")
    audit.check(page, "password-error")
    page.goto(service + "/account/email")
    audit.check(page, "email")
    page.goto(service + "/account/delete")
    audit.check(page, "delete")
    page.goto(service + "/billing/payment-method")
    audit.check(page, "payment-method")
    page.goto(service + "/account/notifications")
    audit.check(page, "notifications")

    # Honest pages: a garbage link, a lapsed subscriber.
    page.goto(service + "/reset-password?token=garbage")
    expect(page.locator("h1")).to_have_text("This link is not valid")
    expect(page.locator("input[type=password]")).to_have_count(0)
    audit.check(page, "bad-link")
    client = stripe.StripeClient(
        STANDIN_API_KEY, base_addresses={"api": live_stack.standin.url}, max_network_retries=0
    )
    [sub] = live_stack.standin.objects("subscription")
    client.v1.subscriptions.cancel(sub["id"])
    assert live_stack.standin.wait_for_webhooks(10)
    page.goto(service + "/")
    expect(page.locator("#lapsed")).to_contain_text("Your subscription ended on")
    expect(page.locator("#come-back")).to_be_visible()
    audit.check(page, "lapsed")

    # Logout from the site returns to the page the reader was on.
    page.goto(site + "/")
    page.locator("#lead-story").click()
    here = page.url
    page.locator("#site-logout").click()
    expect(page).to_have_url(here)
    expect(page.locator("#top-login")).to_be_visible()
    audit.check(page, "article-signed-out")
    audit.passed()
