"""A token works only with the session it was issued for (issue 9 §2): a subscriber's token, or
the site's own token cookie, next to any other paywall session value reads no premium text in
any view. (Module-wide default token lifetime: the attack must not be hidden by a renewal.)"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.functional.test_article_site import PATHS, leaks, sign_up_and_log_in, subscribe


def subscribers_token(stack: Any) -> str:
    """A real subscriber's token, as the service issues it and as the subscriber could hand it
    to anyone."""
    subscriber = sign_up_and_log_in(stack, "sharer@example.com")
    subscribe(stack, subscriber)
    token = subscriber.post(
        stack.service.url + "/api/v1/entitlements/token", headers={"Origin": stack.service.url}
    ).json()["token"]
    assert token
    return str(token)


@pytest.mark.parametrize("session", ["anything", "made-up-" + "x" * 40])
def test_someone_elses_token_next_to_a_made_up_session_reads_nothing(
    live_stack: Any, session: str
) -> None:
    """The attack of issue 9: `paywall_session=<anything>` and `site_entitlement=<someone's
    token>|<hash of anything>` (the cookie format the site used to accept), then every view."""
    import hashlib

    token = subscribers_token(live_stack)
    visitor = requests.Session()
    visitor.cookies.set("paywall_session", session)
    fingerprint = hashlib.sha256(session.encode()).hexdigest()[:16]
    visitor.cookies.set("site_entitlement", f"{token}|{fingerprint}")
    for path in PATHS[:3]:
        response = visitor.get(live_stack.site.url + path, timeout=5)
        assert response.status_code == 200
        assert leaks(response.text) == [], path
    assert visitor.get(live_stack.site.url + PATHS[1], timeout=5).json()["truncated"] is True


def test_a_readers_own_token_cookie_copied_without_its_session_reads_nothing(
    live_stack: Any,
) -> None:
    subscriber = sign_up_and_log_in(live_stack, "sharer@example.com")
    subscribe(live_stack, subscriber)
    assert leaks(subscriber.get(live_stack.site.url + PATHS[0], timeout=5).text)
    copied = subscriber.cookies.get("site_entitlement")
    assert copied
    visitor = requests.Session()
    visitor.cookies.set("paywall_session", "anything")
    visitor.cookies.set("site_entitlement", copied)
    for path in PATHS[:3]:
        assert leaks(visitor.get(live_stack.site.url + path, timeout=5).text) == [], path


@pytest.mark.parametrize(
    "app_config", [{"ENTITLEMENT_TTL": 31, "SESSION_ROTATION_INTERVAL": 1}], ids=["rotating"]
)
def test_the_site_follows_a_rotated_session_value(live_stack: Any, app_config: dict) -> None:
    """A token renewed in a call that rotated the session is bound to the new value: the site
    verifies it against that value and hands the browser the new cookie, so the reader keeps
    reading (and the old value is not reused)."""
    import time

    subscriber = sign_up_and_log_in(live_stack, "rotating@example.com")
    subscribe(live_stack, subscriber)
    first = subscriber.cookies.get("paywall_session")
    assert leaks(subscriber.get(live_stack.site.url + PATHS[0], timeout=5).text)
    time.sleep(1.5)  # past the rotation interval; the 31 s token is within 30 s of expiry
    page = subscriber.get(live_stack.site.url + PATHS[0], timeout=5)
    assert leaks(page.text), page.text[:500]
    rotated = subscriber.cookies.get("paywall_session")
    assert rotated and rotated != first
    for path in PATHS[:3]:
        assert leaks(subscriber.get(live_stack.site.url + path, timeout=5).text), path
