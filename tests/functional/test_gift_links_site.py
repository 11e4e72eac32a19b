"""Gift links on the news site: a subscriber's "Gift this article" button, and a reader
without an account reading the gift in every format; a tampered, expired, revoked or misused
link gets the teaser and an honest message."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import pytest
import requests

from article_site.content import Article, articles
from paywall.clock import utcnow
from paywall.extensions import db
from paywall.gifts.models import Gift
from tests.functional.test_article_levels import leaked
from tests.functional.test_article_site import sign_up_and_log_in

PREMIUM = next(a for a in articles().values() if a.access_level == "premium")
METERED = [a for a in articles().values() if a.access_level == "metered"]


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"GIFTS_PER_MONTH": 2}


def grant_premium(stack: Any, email: str = "reader@example.com") -> None:
    until = (utcnow() + timedelta(days=60)).date().isoformat()
    result = stack.service.app.test_cli_runner().invoke(
        args=["access", "grant", email, "--features", "premium_content", "--until", until,
              "--reason", "test subscriber", "--by", "tests"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def gift_button(browser: requests.Session, site: str, article: Article) -> str:
    """Press "Gift this article" on the article's page; returns the page after."""
    page = browser.get(f"{site}/news/{article.slug}", timeout=5).text
    assert 'id="gift-button"' in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = browser.post(
        f"{site}/news/{article.slug}/gift", data={"csrf_token": token}, timeout=10
    )
    assert response.status_code == 200
    return response.text


def gift_url(page: str) -> str:
    return html.unescape(page.split('id="gift-url" readonly size="60" value="', 1)[1].split('"')[0])


@pytest.fixture
def subscriber(live_stack: Any) -> requests.Session:
    browser = sign_up_and_log_in(live_stack)
    grant_premium(live_stack)
    return browser


def test_only_subscribers_see_the_gift_button(live_stack: Any) -> None:
    site = live_stack.site.url
    assert 'id="gift-button"' not in requests.get(f"{site}/news/{PREMIUM.slug}", timeout=5).text
    reader = sign_up_and_log_in(live_stack)
    assert 'id="gift-button"' not in reader.get(f"{site}/news/{PREMIUM.slug}", timeout=5).text
    grant_premium(live_stack)
    assert 'id="gift-button"' in reader.get(f"{site}/news/{PREMIUM.slug}", timeout=5).text
    free = next(a for a in articles().values() if a.access_level == "free")
    assert 'id="gift-button"' not in reader.get(f"{site}/news/{free.slug}", timeout=5).text


def test_a_gift_is_read_in_full_without_an_account_in_every_format(
    live_stack: Any, subscriber: requests.Session
) -> None:
    site = live_stack.site.url
    page = gift_button(subscriber, site, PREMIUM)
    assert "1 gift article left this month." in page
    url = gift_url(page)
    assert url.startswith(f"{site}/news/{PREMIUM.slug}?gift=")
    friend = requests.Session()  # no account, no cookies
    opened = friend.get(url, timeout=5)
    assert leaked(PREMIUM, opened.text)
    assert 'id="gift-banner"' in opened.text and 'id="paywall"' not in opened.text
    token = url.split("?gift=", 1)[1]
    data = friend.get(f"{site}/news/{PREMIUM.slug}.json?gift={token}", timeout=5).json()
    assert data["entitled"] is True and data["gift"]["allowed"] is True
    assert leaked(PREMIUM, friend.get(f"{site}/news/{PREMIUM.slug}/print?gift={token}").text)
    # The page's own print and JSON links keep the gift.
    assert f"/news/{PREMIUM.slug}/print?gift={token}" in html.unescape(opened.text)
    # Without the link, the friend is back at the paywall.
    assert not leaked(PREMIUM, friend.get(f"{site}/news/{PREMIUM.slug}", timeout=5).text)


def test_a_gift_of_a_metered_article_spends_no_meter(
    live_stack: Any, subscriber: requests.Session
) -> None:
    site = live_stack.site.url
    url = gift_url(gift_button(subscriber, site, METERED[0]))
    friend = requests.Session()
    page = friend.get(url, timeout=5).text
    assert leaked(METERED[0], page) and "left this month" not in page
    assert "site_meter" not in friend.cookies
    assert "2 free articles left this month" in friend.get(f"{site}/news/{METERED[1].slug}").text


def test_a_gift_link_on_another_article_or_tampered_shows_the_teaser_and_why(
    live_stack: Any, subscriber: requests.Session
) -> None:
    site = live_stack.site.url
    token = gift_url(gift_button(subscriber, site, PREMIUM)).split("?gift=", 1)[1]
    other = next(a for a in articles().values() if a.access_level == "registered")
    friend = requests.Session()
    elsewhere = friend.get(f"{site}/news/{other.slug}?gift={token}", timeout=5).text
    assert not leaked(other, elsewhere)
    assert "This gift link is for another article." in elsewhere
    forged = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    for url in (
        f"{site}/news/{PREMIUM.slug}?gift={forged}",
        f"{site}/news/{PREMIUM.slug}/print?gift={forged}",
    ):
        page = friend.get(url, timeout=5).text
        assert not leaked(PREMIUM, page), url
        assert "This gift link is not valid" in page, url
    data = friend.get(f"{site}/news/{PREMIUM.slug}.json?gift={forged}", timeout=5).json()
    assert data["entitled"] is False and data["truncated"] is True
    assert data["gift"]["allowed"] is False


def test_an_expired_or_revoked_gift_link_shows_the_teaser_and_why(
    live_stack: Any, subscriber: requests.Session
) -> None:
    site = live_stack.site.url
    url = gift_url(gift_button(subscriber, site, PREMIUM))
    friend = requests.Session()
    assert leaked(PREMIUM, friend.get(url, timeout=5).text)
    app = live_stack.service.app
    with app.app_context():
        gift = db.session.query(Gift).one()
        gift.expires_at = utcnow() - timedelta(seconds=1)
        gift_id = gift.id
        db.session.commit()
    page = friend.get(url, timeout=5).text
    assert not leaked(PREMIUM, page)
    assert "This gift link has expired." in page and 'id="paywall"' in page
    with app.app_context():
        gift = db.session.get(Gift, gift_id)
        gift.expires_at = utcnow() + timedelta(days=1)
        db.session.commit()
    revoked = subscriber.delete(f"{live_stack.service.url}/api/v1/gifts/{gift_id}",
                                headers={"Origin": live_stack.service.url})  # fmt: skip
    assert revoked.status_code == 204
    page = friend.get(url, timeout=5).text
    assert not leaked(PREMIUM, page)
    assert "has withdrawn it" in page


def test_the_gift_button_past_the_monthly_limit_says_so(
    live_stack: Any, subscriber: requests.Session
) -> None:
    site = live_stack.site.url
    gift_button(subscriber, site, PREMIUM)
    gift_button(subscriber, site, METERED[0])
    page = gift_button(subscriber, site, METERED[1])
    assert 'id="gift-error"' in page and 'id="gift-url"' not in page
    assert "You have shared your 2 gift articles this month." in page


def test_the_subscriber_lists_and_withdraws_gift_links_on_the_site(
    live_stack: Any, subscriber: requests.Session
) -> None:
    site = live_stack.site.url
    url = gift_url(gift_button(subscriber, site, PREMIUM))
    requests.Session().get(url, timeout=5)  # one friend opens it
    page = subscriber.get(f"{site}/gifts", timeout=5).text
    assert "1 of 2 gift articles left this month." in page
    assert html.escape(PREMIUM.headline) in page or PREMIUM.headline in page
    assert 'data-state="active"' in page and "opened in 1 browser" in page
    gift_id = page.split('class="gift-link" data-id="', 1)[1].split('"', 1)[0]
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    withdrawn = subscriber.post(
        f"{site}/gifts/{gift_id}/revoke", data={"csrf_token": token}, timeout=5
    )
    assert withdrawn.status_code == 200 and 'data-state="revoked"' in withdrawn.text
    assert "has withdrawn it" in requests.Session().get(url, timeout=5).text
    # Signed out: the list is behind the login.
    anonymous = requests.get(f"{site}/gifts", allow_redirects=False, timeout=5)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
