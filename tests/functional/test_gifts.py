"""Gift links through the API: who may give, the monthly limit, what opening a link checks
(signature, article, date, revocation, readers per link), listing and revoking."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from itsdangerous import URLSafeSerializer

from paywall.clock import utcnow
from paywall.extensions import db
from paywall.gifts.models import Gift
from tests.conftest import AuthActions

VISITOR = "visitor-aaaaaaaaaaaaaaaa"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"GIFTS_PER_MONTH": 3, "GIFT_MAX_READERS": 2, "GIFT_TTL_DAYS": 30}


def grant_premium(app: Flask, email: str = "reader@example.com") -> None:
    until = (utcnow() + timedelta(days=60)).date().isoformat()
    result = app.test_cli_runner().invoke(
        args=["access", "grant", email, "--features", "premium_content", "--until", until,
              "--reason", "test subscriber", "--by", "tests"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.fixture
def giver(app: Flask, auth: AuthActions, reader: str) -> Any:
    grant_premium(app)
    return auth.browser()


def give(browser: Any, article: str = "story") -> Any:
    return browser.post("/api/v1/gifts", json={"article": article})


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["gift"][0]


def open_gift(app: Flask, token: str, article: str = "story", visitor: str = VISITOR) -> Any:
    return app.test_client().post(
        "/api/v1/gifts/open", json={"token": token, "article": article, "visitor": visitor}
    )


def error_code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


def test_a_reader_without_premium_content_cannot_give(auth: AuthActions, reader: str) -> None:
    response = give(auth.browser())
    assert response.status_code == 403
    assert error_code(response) == "premium_required"


def test_giving_requires_signing_in(client: Any) -> None:
    assert give(client).status_code == 401


def test_a_subscriber_gives_a_link_that_opens_the_article_without_an_account(
    app: Flask, giver: Any
) -> None:
    response = give(giver, "the-story")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["remaining"] == 2
    assert body["url"].startswith("https://news.test/news/the-story?gift=")
    expires = body["expires_at"]
    assert timedelta(days=29) < (utcnow().fromisoformat(expires) - utcnow()) <= timedelta(days=30)
    opened = open_gift(app, token_of(body["url"]), "the-story")
    assert opened.status_code == 200, opened.get_json()
    assert opened.get_json() == {"article": "the-story", "expires_at": expires}


def test_a_gift_opens_no_other_article(app: Flask, giver: Any) -> None:
    token = token_of(give(giver, "the-story").get_json()["url"])
    response = open_gift(app, token, "another-story")
    assert response.status_code == 403
    assert error_code(response) == "gift_wrong_article"


def test_a_tampered_gift_link_is_refused(app: Flask, giver: Any) -> None:
    token = token_of(give(giver, "the-story").get_json()["url"])
    gift_id = token.split(".")[0]
    for forged in (
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature changed
        URLSafeSerializer("not-the-key", salt="paywall.gift").dumps([gift_id, "other"]),
        URLSafeSerializer(app.config["SECRET_KEY"], salt="other-salt").dumps([gift_id, "x"]),
        "garbage",
    ):
        for article in ("the-story", "other", "x"):
            response = open_gift(app, str(forged), article)
            assert response.status_code == 403, (forged, response.get_json())
            assert error_code(response) == "gift_invalid"


def test_an_expired_gift_link_is_refused(app: Flask, giver: Any) -> None:
    token = token_of(give(giver).get_json()["url"])
    assert open_gift(app, token).status_code == 200
    with app.app_context():
        for gift in db.session.query(Gift).all():
            gift.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    response = open_gift(app, token)
    assert response.status_code == 410
    assert error_code(response) == "gift_expired"


def test_the_monthly_limit_and_revoking_does_not_refill_it(app: Flask, giver: Any) -> None:
    bodies = [give(giver, f"story-{n}").get_json() for n in range(3)]
    assert [b["remaining"] for b in bodies] == [2, 1, 0]
    refused = give(giver, "story-4")
    assert refused.status_code == 403
    assert error_code(refused) == "gift_limit_reached"
    assert refused.get_json()["limit"] == 3
    assert giver.delete(f"/api/v1/gifts/{bodies[0]['id']}").status_code == 204
    assert error_code(give(giver, "story-5")) == "gift_limit_reached"
    # Gifts made last month do not count this month.
    with app.app_context():
        for gift in db.session.query(Gift).all():
            gift.month = "2000-01"
        db.session.commit()
    assert give(giver, "story-6").status_code == 201


def test_concurrent_gifts_never_pass_the_monthly_limit(app: Flask, giver: Any) -> None:
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def attempt(n: int) -> None:
        barrier.wait(timeout=60)
        statuses.append(give(giver, f"story-{n}").status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [201, 201, 201, 403, 403, 403]


def test_the_giver_lists_and_revokes_their_gifts(app: Flask, auth: AuthActions, giver: Any) -> None:
    first = give(giver, "first").get_json()
    give(giver, "second")
    listing = giver.get("/api/v1/gifts").get_json()
    assert [g["article"] for g in listing["gifts"]] == ["second", "first"]
    assert listing["remaining"] == 1 and listing["limit"] == 3
    assert all(g["state"] == "active" and g["readers"] == 0 for g in listing["gifts"])
    assert listing["gifts"][1]["url"] == first["url"]
    # Nobody else can revoke it.
    auth.sign_up("other@example.com")
    grant_premium(app, "other@example.com")
    other = auth.browser("other@example.com")
    assert other.delete(f"/api/v1/gifts/{first['id']}").status_code == 404
    assert other.get("/api/v1/gifts").get_json()["gifts"] == []
    assert open_gift(app, token_of(first["url"]), "first").status_code == 200
    assert giver.delete(f"/api/v1/gifts/{first['id']}").status_code == 204
    response = open_gift(app, token_of(first["url"]), "first")
    assert response.status_code == 410
    assert error_code(response) == "gift_revoked"
    states = {g["article"]: g["state"] for g in giver.get("/api/v1/gifts").get_json()["gifts"]}
    assert states == {"first": "revoked", "second": "active"}


def test_a_link_opens_for_a_limited_number_of_browsers(app: Flask, giver: Any) -> None:
    token = token_of(give(giver).get_json()["url"])
    first, second, third = (f"visitor-{c * 16}" for c in "abc")
    assert open_gift(app, token, visitor=first).status_code == 200
    assert open_gift(app, token, visitor=second).status_code == 200
    assert open_gift(app, token, visitor=first).status_code == 200  # the same browser again
    response = open_gift(app, token, visitor=third)
    assert response.status_code == 410
    assert error_code(response) == "gift_used_up"
    listing = giver.get("/api/v1/gifts").get_json()["gifts"]
    assert listing[0]["readers"] == 2 and listing[0]["state"] == "used_up"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"article": "../etc"},
        {"article": "x" * 300},
        {"article": 5},
    ],
)
def test_bad_gift_requests_get_the_json_error(giver: Any, body: dict[str, Any]) -> None:
    response = giver.post("/api/v1/gifts", json=body)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"


@pytest.mark.parametrize(
    "body",
    [
        {"token": "x", "article": "story"},
        {"token": "x", "article": "story", "visitor": "short"},
        {"token": "", "article": "story", "visitor": VISITOR},
        {"token": "x" * 600, "article": "story", "visitor": VISITOR},
    ],
)
def test_bad_open_requests_get_the_json_error(app: Flask, body: dict[str, Any]) -> None:
    response = app.test_client().post("/api/v1/gifts/open", json=body)
    assert response.status_code == 422
    assert error_code(response) == "validation_error"


def test_concurrent_new_browsers_never_pass_the_readers_cap(app: Flask, giver: Any) -> None:
    token = token_of(give(giver).get_json()["url"])
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def attempt(n: int) -> None:
        barrier.wait(timeout=60)
        statuses.append(open_gift(app, token, visitor=f"visitor-{n}" + "x" * 16).status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [200, 200, 410, 410, 410, 410]  # GIFT_MAX_READERS = 2
    assert giver.get("/api/v1/gifts").get_json()["gifts"][0]["readers"] == 2
