"""Article levels on the news site: free, metered (the monthly meter), registered (the
registration wall) and premium. Over the meter, a metered article's premium text is never
sent, in HTML, JSON, print or feed."""

from __future__ import annotations

import html
from typing import Any

import requests

from article_site.content import LEVELS, Article, articles
from tests.conftest import PASSWORD, body_of
from tests.functional.test_article_site import sign_up_and_log_in, subscribe

METERED = [a for a in articles().values() if a.access_level == "metered"]
REGISTERED = [a for a in articles().values() if a.access_level == "registered"]


def leaked(article: Article, text: str) -> bool:
    plain = html.unescape(text)
    return any(p[10:60] in plain for p in article.premium)


def submit(browser: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    """Fill in a service form as a browser does: with the CSRF token from its page."""
    page = browser.get(url, timeout=5).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return browser.post(url, data={**data, "csrf_token": token}, timeout=5)


def every_format(site: str, article: Article) -> list[str]:
    base = f"{site}/news/{article.slug}"
    return [base, base + ".json", base + "/print", f"{site}/feed.xml", f"{site}/"]


def read_three(browser: requests.Session, site: str) -> None:
    texts = [browser.get(f"{site}/news/{a.slug}", timeout=5).text for a in METERED[:3]]
    assert "2 free articles left this month" in texts[0]
    assert "1 free article left this month" in texts[1]
    assert "0 free articles left this month" in texts[2]
    assert all(leaked(a, t) for a, t in zip(METERED[:3], texts, strict=True))


def assert_walled(browser: requests.Session, site: str, article: Article) -> None:
    for url in every_format(site, article):
        response = browser.get(url, timeout=5)
        assert response.status_code == 200, url
        assert not leaked(article, response.text), url
    page = browser.get(f"{site}/news/{article.slug}", timeout=5).text
    assert 'id="paywall"' in page
    assert "You have read your 3 free articles this month." in page
    assert browser.get(f"{site}/news/{article.slug}.json", timeout=5).json()["truncated"]


def test_the_demo_site_carries_every_level_with_badges_and_links(live_stack: Any) -> None:
    counts = dict.fromkeys(LEVELS, 0)
    for article in articles().values():
        counts[article.access_level] += 1
    assert counts["free"] >= 2 and counts["metered"] >= 4 and counts["registered"] >= 2
    assert counts["premium"] >= 1
    front = requests.get(live_stack.site.url + "/", timeout=5).text
    for article in articles().values():
        assert f'href="/news/{article.slug}"' in front
        page = requests.get(live_stack.site.url + f"/news/{article.slug}", timeout=5)
        assert page.status_code == 200
        assert f'id="level">{article.access_level}</span>' in page.text
        assert leaked(article, page.text) == (article.access_level in ("free", "metered"))


def test_anonymous_meter_then_the_wall_in_every_format(live_stack: Any) -> None:
    site = live_stack.site.url
    browser = requests.Session()
    read_three(browser, site)
    # The same article again does not count, in any format.
    data = browser.get(f"{site}/news/{METERED[0].slug}.json", timeout=5).json()
    assert data["entitled"] is True and data["meter"]["remaining"] == 0
    assert_walled(browser, site, METERED[3])


def test_a_tampered_meter_cookie_counts_as_full(live_stack: Any) -> None:
    site = live_stack.site.url
    browser = requests.Session()
    browser.cookies.set("site_meter", "eyJtIjoiMjAyNi0xMiIsImEiOltdfQ.forged")
    assert_walled(browser, site, METERED[0])


def test_an_anonymous_reader_clearing_cookies_resets_only_the_anonymous_meter(
    live_stack: Any,
) -> None:
    """Documented: a cookie meter resets when cookies are cleared; an account does not."""
    site = live_stack.site.url
    browser = requests.Session()
    read_three(browser, site)
    assert_walled(browser, site, METERED[3])
    browser.cookies.clear()
    assert leaked(METERED[3], browser.get(f"{site}/news/{METERED[3].slug}", timeout=5).text)
    # Signed in, the count is the account's, kept by the service: clearing the site's
    # cookies (everything but the login itself) changes nothing.
    reader = sign_up_and_log_in(live_stack)
    read_three(reader, site)
    login = reader.cookies["paywall_session"]
    reader.cookies.clear()
    reader.cookies.set("paywall_session", login)
    assert_walled(reader, site, METERED[3])


def test_a_new_device_for_the_same_account_is_still_over_the_meter(live_stack: Any) -> None:
    site = live_stack.site.url
    laptop = sign_up_and_log_in(live_stack)
    read_three(laptop, site)
    phone = requests.Session()
    login = phone.post(
        live_stack.service.url + "/api/v1/sessions",
        json={
            "email": "reader@example.com",
            "password": "correct horse battery staple",
            "device_name": "Phone",
        },
    )
    assert login.status_code == 201
    assert_walled(phone, site, METERED[3])
    assert leaked(METERED[0], phone.get(f"{site}/news/{METERED[0].slug}", timeout=5).text)


def test_subscribers_read_metered_articles_without_a_meter(live_stack: Any) -> None:
    site = live_stack.site.url
    browser = sign_up_and_log_in(live_stack)
    subscribe(live_stack, browser)
    for article in METERED:
        page = browser.get(f"{site}/news/{article.slug}", timeout=5).text
        assert leaked(article, page) and "left this month" not in page


def test_the_registration_wall_round_trip(live_stack: Any, mailbox: Any) -> None:
    site = live_stack.site.url
    article = REGISTERED[0]
    here = f"{site}/news/{article.slug}"
    anonymous = requests.Session()
    for url in every_format(site, article):
        assert not leaked(article, anonymous.get(url, timeout=5).text), url
    page = anonymous.get(here, timeout=5).text
    assert "Create a free account to read this" in page
    signup_link = html.unescape(page.split('id="signup" href="', 1)[1].split('"', 1)[0])
    assert signup_link.startswith(live_stack.service.url + "/signup?next=")
    # Sign up on the service's page, verify from the email, log in: back on the article.
    created = submit(anonymous, signup_link, {"email": "new@example.com", "password": PASSWORD})
    assert created.status_code == 200 and "Check your inbox" in created.text
    message = mailbox.wait_for(1)[0]
    link = next(w for w in body_of(message).split() if "/verify-email?token=" in w)
    assert "next=" in link
    token = link.split("token=", 1)[1].split("&", 1)[0]
    verified = submit(anonymous, link, {"token": token, "next": here})
    assert "Address confirmed" in verified.text
    assert f'href="{here}"' in verified.text.replace("&amp;", "&")
    logged_in = submit(
        anonymous,
        live_stack.service.url + "/login?next=" + here,
        {"email": "new@example.com", "password": PASSWORD, "next": here},
    )
    assert logged_in.url == here
    assert leaked(article, logged_in.text)
    assert anonymous.get(here + ".json", timeout=5).json()["entitled"] is True
