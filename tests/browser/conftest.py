"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the live stack.

One browser per test module; every test opens its own contexts (a context is one reader's
device: its own cookie jar) and they are closed after the test. Each journey ends with a
screenshot in ``test-artifacts/browser/<test name>.png``; a failing test also leaves one
``<test name>-failure-<n>.png`` per open page.

Chromium is not downloaded (never ``playwright install``): Debian's package is launched through
``executable_path`` (``PAYWALL_CHROMIUM`` names another binary). If it, or Playwright, is missing
the tests skip, unless ``PAYWALL_REQUIRE_BROWSER=1`` is set (CI), in which case they fail.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from article_site.content import articles
from tests.conftest import PASSWORD

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - dev extras not installed: the tests skip or fail
    expect = None  # type: ignore[assignment]

CHROMIUM = os.environ.get("PAYWALL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No internet here: without these Chromium keeps making (refused) background connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000

ARTICLE = next(iter(articles().values()))
ARTICLE_PATH = f"/news/{ARTICLE.slug}"
PROMISES = (
    "Never miss a story with notifications",
    "Gain full access to our premium content",
    "Browse free from up to 5 devices at once",
)
SUCCESS_CARD = "4242 4242 4242 4242"
DECLINE_CARD = "4000 0000 0000 0341"
EMAIL = "reader@example.com"
EVICTED_NOTICE = (
    "You were signed out on this device because another device signed in at your "
    "account's device limit."
)


# -- the browser ---------------------------------------------------------------------------
def browser_problem() -> str | None:
    """Why these tests cannot drive Chromium here, or None."""
    if expect is None:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def browser_required() -> bool:
    return os.environ.get("PAYWALL_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium for one test module; None when it is missing but required (the tests
    then fail when they open a context, so they are reported as failed, not skipped).

    Module scope, not session: Playwright's sync API leaves its asyncio loop marked as running
    in the main thread while it is started, which would break any later test calling
    ``asyncio.run``."""
    problem = browser_problem()
    if problem is not None:
        if not browser_required():
            pytest.skip(problem)
        yield None
        return
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, "report_" + report.when, report)
    return report


@pytest.fixture
def shots_dir(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "browser"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def new_context(
    chromium: Any, request: pytest.FixtureRequest, shots_dir: Path
) -> Iterator[Callable[..., Any]]:
    """``new_context(**options)``: a fresh browser context (one reader's device)."""
    opened: list[Any] = []

    def open_context(**options: Any) -> Any:
        if chromium is None:
            pytest.fail(f"PAYWALL_REQUIRE_BROWSER=1 but {browser_problem()}", pytrace=False)
        options.setdefault("viewport", {"width": 1024, "height": 800})
        context = chromium.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        return context

    yield open_context
    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    number = 0
    for context in opened:
        for page in context.pages if failed else ():
            number += 1
            with contextlib.suppress(Exception):  # a crashed page must not hide the failure
                page.screenshot(
                    path=shots_dir / f"{request.node.name}-failure-{number}.png", full_page=True
                )
        context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, shots_dir: Path) -> Callable[..., Path]:
    """``screenshot(page)`` saves ``test-artifacts/browser/<test name>.png`` (full page)."""

    def take(page: Any, suffix: str = "") -> Path:
        path = shots_dir / f"{request.node.name}{suffix}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


# -- what a reader does ----------------------------------------------------------------------
def article_url(stack: Any) -> str:
    return stack.site.url + ARTICLE_PATH


def premium_leaks(source: str) -> list[str]:
    """Distinctive slices of premium paragraphs present in a page's source."""
    unescaped = html.unescape(source)
    return [p[10:60] for p in ARTICLE.premium if p[10:60] in unescaped or p[10:60] in source]


def expect_teaser_only(page: Any) -> None:
    """The article as a reader who may not read it gets it: teaser, subscribe box, no premium
    paragraph anywhere in the page (not hidden, not in the source)."""
    expect(page.locator("#paywall")).to_be_visible()
    expect(page.locator("#article-body p")).to_have_text(list(ARTICLE.teaser))
    expect(page.locator(".premium")).to_have_count(0)
    assert premium_leaks(page.content()) == []


def expect_full_article(page: Any) -> None:
    """Every paragraph visible, the premium ones included, and no subscribe box."""
    expect(page.locator("#article-body p")).to_have_text(list(ARTICLE.paragraphs))
    expect(page.locator(".premium")).to_have_count(len(ARTICLE.premium))
    for paragraph in page.locator(".premium").all():
        expect(paragraph).to_be_visible()
    expect(page.locator("#paywall")).to_have_count(0)


def reload_until(page: Any, check: Callable[[], None], timeout: float) -> float:
    """Reload ``page`` until ``check`` passes (it raises AssertionError until then); returns
    the seconds it took. A reader pressing F5, not a sleep."""
    started = time.monotonic()
    while True:
        try:
            check()
            return time.monotonic() - started
        except AssertionError:
            if time.monotonic() - started > timeout:
                raise
        page.wait_for_timeout(200)
        page.reload()


def fill_credentials(page: Any, email: str = EMAIL, password: str = PASSWORD) -> None:
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)


def sign_up_in_browser(page: Any, email: str = EMAIL) -> None:
    """On the service's sign-up page: create the account, then follow "Log in" and log in."""
    expect(page.locator("h1")).to_have_text("Create your account")
    fill_credentials(page, email)
    page.locator("#signup").click()
    expect(page.locator("#message")).to_contain_text("You can log in right away")
    page.get_by_role("link", name="Log in", exact=True).last.click()
    log_in_in_browser(page, email)


def log_in_in_browser(page: Any, email: str = EMAIL) -> None:
    expect(page.locator("h1")).to_have_text("Log in")
    fill_credentials(page, email)
    page.locator("#login").click()


def sign_up_by_api(context: Any, stack: Any, email: str = EMAIL) -> None:
    response = context.request.post(
        stack.service.url + "/api/v1/accounts", data={"email": email, "password": PASSWORD}
    )
    assert response.status == 202, response.text()


def log_in_by_api(context: Any, stack: Any, device_name: str, email: str = EMAIL) -> str:
    """Log this context in through the JSON API (the cookie lands in the context's jar);
    returns the device session id."""
    response = context.request.post(
        stack.service.url + "/api/v1/sessions",
        data={"email": email, "password": PASSWORD, "device_name": device_name},
    )
    assert response.status == 201, response.text()
    assert any(c["name"] == "paywall_session" for c in context.cookies(stack.service.url))
    return str(response.json()["id"])


def pay(page: Any, card: str) -> None:
    """On the stand-in's hosted Checkout page: enter the card and press Subscribe."""
    expect(page).to_have_url(re.compile(r"/checkout/cs_"))
    page.locator("#card-number").fill(card)
    page.locator("#pay").click()
