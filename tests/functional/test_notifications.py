"""Story notifications end to end: opt-in, publish, Web Push to the push stand-in (VAPID
verified, payload decrypted there), answers of the push service, email alerts, exactly once."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from paywall.extensions import db
from paywall.notifications.models import PushSubscription, StoryDelivery
from push_standin import PushStandIn
from tests.conftest import AuthActions, Mailbox, Stripe, body_of

PUBLISHER_KEY = "pk_test_" + secrets.token_hex(24)
CMS = {"Authorization": f"Bearer {PUBLISHER_KEY}"}


@pytest.fixture(scope="session")
def push_server() -> Iterator[PushStandIn]:
    with PushStandIn() as server:
        yield server


@pytest.fixture
def push(push_server: PushStandIn) -> PushStandIn:
    push_server.reset()
    return push_server


@pytest.fixture
def app_config(push_server: PushStandIn) -> dict[str, Any]:
    return {
        "PUSH_ALLOWED_ORIGINS": [push_server.url, "https://*.notify.windows.com"],
        "PUBLISHER_API_KEYS": [PUBLISHER_KEY],
        "PUSH_RETRY_BACKOFF": 0.05,
        "PUSH_MAX_ATTEMPTS": 3,
        "PUSH_TIMEOUT": 5,
        "NOTIFICATION_BATCH_SIZE": 3,
    }


def premium(stripe_actions: Stripe, auth: AuthActions, email: str, plan: str = "premium_monthly"):
    auth.sign_up(email)
    browser = auth.browser(email)
    stripe_actions.deliver()
    sub = stripe_actions.subscribe(browser, plan)
    stripe_actions.deliver()
    return browser, sub


def opt_in(browser: FlaskClient, push: PushStandIn, **extra: Any) -> tuple[dict[str, Any], Any]:
    subscription = push.new_subscription()
    response = browser.post(
        "/api/v1/notifications/push-subscriptions", json={**subscription, **extra}
    )
    return subscription, response


def publish(app: Flask, story_id: str = "story-1", **extra: Any) -> Any:
    body = {
        "id": story_id,
        "title": "Parliament votes on the budget",
        "url": "https://news.test/politics/budget-vote",
        "summary": "The vote is expected late tonight.",
        "topics": ["politics"],
        **extra,
    }
    return app.test_client().post("/api/v1/stories", json=body, headers=CMS)


def counts(app: Flask, story_id: str = "story-1") -> dict[str, Any]:
    response = app.test_client().get(f"/api/v1/stories/{story_id}", headers=CMS)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["counts"]  # type: ignore[no-any-return]


class LostSends:
    """From ``lose()`` on, jobs are recorded but never reach the broker (it is down), so a
    test runs the fan-out itself; ``restore()`` brings the broker back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def lose(self) -> None:
        self.monkeypatch.setattr("paywall.queue._send", lambda *args, **kwargs: None)

    def restore(self) -> None:
        self.monkeypatch.undo()


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> LostSends:
    return LostSends(monkeypatch)


@pytest.fixture
def reader(billing_auth: AuthActions, stripe_actions: Stripe) -> FlaskClient:
    browser, _sub = premium(stripe_actions, billing_auth, "premium@example.com")
    return browser


# -- opting in ------------------------------------------------------------------------------------
def test_vapid_key_is_a_public_uncompressed_p256_point(billing_app: Flask) -> None:
    from paywall.notifications.push import b64url_decode

    response = billing_app.test_client().get("/api/v1/notifications/vapid-key")
    assert response.status_code == 200
    point = b64url_decode(response.get_json()["public_key"])
    assert len(point) == 65 and point[0] == 4


def test_premium_reader_opts_in_once_per_endpoint_and_can_list_and_delete(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, billing_auth: AuthActions
) -> None:
    subscription, response = opt_in(reader, push, topics=["politics"])
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["endpoint"] == subscription["endpoint"]
    assert created["topics"] == ["politics"] and created["created_at"]
    again = reader.post("/api/v1/notifications/push-subscriptions", json=subscription)
    assert again.status_code == 200 and again.get_json()["id"] == created["id"]
    listed = reader.get("/api/v1/notifications/push-subscriptions").get_json()["subscriptions"]
    assert [s["id"] for s in listed] == [created["id"]]

    billing_auth.sign_up("other@example.com")
    other = billing_auth.browser("other@example.com")
    gone = other.delete(f"/api/v1/notifications/push-subscriptions/{created['id']}")
    assert gone.status_code == 404
    assert (
        reader.delete(f"/api/v1/notifications/push-subscriptions/{created['id']}").status_code
        == 204
    )
    assert reader.get("/api/v1/notifications/push-subscriptions").get_json()["subscriptions"] == []


def test_reader_without_the_feature_gets_feature_required(
    billing_app: Flask, billing_auth: AuthActions, stripe_actions: Stripe, push: PushStandIn
) -> None:
    billing_auth.sign_up("free@example.com")
    free = billing_auth.browser("free@example.com")
    _sub, response = opt_in(free, push)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "feature_required"
    solo, _ = premium(stripe_actions, billing_auth, "solo@example.com", plan="solo_monthly")
    _sub, response = opt_in(solo, push)
    assert response.get_json()["error"]["code"] == "feature_required"
    with billing_app.app_context():
        assert db.session.scalars(select(PushSubscription)).all() == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example/push/abc",
        "http://fcm.googleapis.com/fcm/send/abc",  # listed with https only
        "https://fcm.googleapis.com@evil.example/x",
        "https://notify.windows.com.evil.example/x",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "not a url",
    ],
)
def test_endpoint_outside_the_allowed_origins_is_refused(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, endpoint: str
) -> None:
    subscription = push.new_subscription()
    response = reader.post(
        "/api/v1/notifications/push-subscriptions", json={**subscription, "endpoint": endpoint}
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "push_endpoint_not_allowed"


def test_wildcard_origin_accepts_a_subdomain(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn
) -> None:
    subscription = push.new_subscription()
    endpoint = "https://wns2-by3p.notify.windows.com/w/?token=abc"
    response = reader.post(
        "/api/v1/notifications/push-subscriptions", json={**subscription, "endpoint": endpoint}
    )
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({"p256dh": "BAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}, "p256dh"),  # too short
        # 65 bytes starting 0x04 but not on the curve
        ({"p256dh": "BA" + "A" * 85, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}, "p256dh"),
        (None, "auth"),  # a 15-byte auth secret
    ],
)
def test_keys_must_be_a_p256_point_and_a_16_byte_secret(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, keys: Any, field: str
) -> None:
    subscription = push.new_subscription()
    if keys is None:
        keys = {**subscription["keys"], "auth": "AAAAAAAAAAAAAAAAAAAA"}
    response = reader.post(
        "/api/v1/notifications/push-subscriptions", json={**subscription, "keys": keys}
    )
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]["keys"]


def test_topics_and_preferences(billing_app: Flask, reader: FlaskClient) -> None:
    topics = billing_app.test_client().get("/api/v1/notifications/topics").get_json()["topics"]
    assert {"id": "politics", "name": "Politics"} in topics
    prefs = reader.get("/api/v1/notifications/preferences").get_json()
    assert prefs == {"email_alerts": False, "topics": [t["id"] for t in topics]}
    changed = reader.put(
        "/api/v1/notifications/preferences", json={"email_alerts": True, "topics": ["world"]}
    )
    assert changed.status_code == 200
    assert changed.get_json() == {"email_alerts": True, "topics": ["world"]}
    bad = reader.put("/api/v1/notifications/preferences", json={"topics": ["astrology"]})
    assert bad.status_code == 422 and "topics" in bad.get_json()["error"]["fields"]
    assert reader.get("/api/v1/notifications/preferences").get_json()["topics"] == ["world"]


def test_anonymous_calls_are_401(billing_app: Flask) -> None:
    client = billing_app.test_client()
    assert client.get("/api/v1/notifications/preferences").status_code == 401
    assert client.post("/api/v1/notifications/push-subscriptions", json={}).status_code == 401


# -- publishing and delivery ----------------------------------------------------------------------
def test_published_story_arrives_decrypted_once_and_a_repeat_sends_nothing(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn
) -> None:
    subscription, response = opt_in(reader, push)
    assert response.status_code == 201
    published = publish(billing_app, urgency="high")
    assert published.status_code == 202, published.get_json()
    assert published.get_json() == {"id": "story-1", "status": "queued"}

    [message] = push.messages(subscription["endpoint"])
    assert message.json() == {
        "title": "Parliament votes on the budget",
        "body": "The vote is expected late tonight.",
        "url": "https://news.test/politics/budget-vote",
        "story_id": "story-1",
    }
    assert message.urgency == "high" and message.ttl == 86400 and message.topic
    assert message.vapid_claims["sub"].startswith("mailto:")
    assert message.vapid_claims["aud"] == push.url
    assert len(message.payload) < 4096
    assert counts(billing_app)["delivered"] == 1

    again = publish(billing_app)
    assert again.status_code == 200 and again.get_json()["status"] == "sent"
    assert push.posts(subscription["endpoint"]) == 1
    assert counts(billing_app) == {
        "queued": 0,
        "delivered": 1,
        "gone": 0,
        "failed": 0,
        "skipped": 0,
        "push": {"queued": 0, "delivered": 1, "gone": 0, "failed": 0, "skipped": 0},
        "email": {"queued": 0, "delivered": 0, "gone": 0, "failed": 0, "skipped": 0},
    }


def test_reader_not_following_the_topic_is_skipped(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn
) -> None:
    subscription, _ = opt_in(reader, push, topics=["sport"])
    publish(billing_app)
    assert push.messages(subscription["endpoint"]) == []
    assert counts(billing_app)["skipped"] == 1


def test_cancelled_reader_gets_nothing(
    billing_app: Flask,
    billing_auth: AuthActions,
    stripe_actions: Stripe,
    push: PushStandIn,
) -> None:
    browser, sub = premium(stripe_actions, billing_auth, "leaving@example.com")
    subscription, response = opt_in(browser, push)
    assert response.status_code == 201
    stripe_actions.client.v1.subscriptions.cancel(sub["id"])
    stripe_actions.deliver()
    publish(billing_app)
    assert push.posts(subscription["endpoint"]) == 0
    assert counts(billing_app)["skipped"] == 1
    with billing_app.app_context():
        [row] = db.session.scalars(select(StoryDelivery)).all()
        assert row.reason == "not_entitled"


def test_push_service_410_deletes_the_subscription(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn
) -> None:
    subscription, _ = opt_in(reader, push)
    push.fail(subscription["endpoint"], 410)
    publish(billing_app)
    assert counts(billing_app)["gone"] == 1
    assert reader.get("/api/v1/notifications/push-subscriptions").get_json()["subscriptions"] == []


def test_signed_out_device_gets_nothing_its_subscription_went_with_the_session(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, billing_auth: AuthActions
) -> None:
    subscription, _ = opt_in(reader, push)
    assert reader.delete("/api/v1/sessions/current").status_code == 204
    with billing_app.app_context():
        assert db.session.scalars(select(PushSubscription)).all() == []
    publish(billing_app)
    assert push.posts(subscription["endpoint"]) == 0


@pytest.mark.parametrize("how", ["revoked", "password_reset_all"])
def test_every_way_a_session_ends_deletes_its_push_subscriptions(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, billing_auth: AuthActions, how: str
) -> None:
    other = billing_auth.browser("premium@example.com", name="Phone")
    opt_in(other, push)
    keep, _ = opt_in(reader, push)
    if how == "revoked":
        phone = next(
            s for s in reader.get("/api/v1/sessions").get_json()["sessions"] if not s["current"]
        )
        assert reader.delete(f"/api/v1/sessions/{phone['id']}").status_code == 204
        left = [
            s["endpoint"]
            for s in reader.get("/api/v1/notifications/push-subscriptions").get_json()[
                "subscriptions"
            ]
        ]
        assert left == [keep["endpoint"]]
    else:
        from paywall.devices.services import device_service

        with billing_app.test_request_context():
            account = reader.get("/api/v1/account").get_json()["id"]
            device_service().end_all(account)
            db.session.commit()
        with billing_app.app_context():
            assert db.session.scalars(select(PushSubscription)).all() == []


def test_429_is_retried_honouring_retry_after_then_delivered(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, sends: LostSends
) -> None:
    from paywall.notifications.tasks import run_story

    subscription, _ = opt_in(reader, push)
    push.fail(subscription["endpoint"], 429, times=1, retry_after="1")
    sends.lose()
    assert publish(billing_app).status_code == 202
    run_story(billing_app, "story-1", wait=0.2)  # Retry-After (1 s) is later than that
    assert counts(billing_app)["queued"] == 1 and push.messages() == []
    run_story(billing_app, "story-1", wait=5)
    assert len(push.messages(subscription["endpoint"])) == 1
    assert push.posts(subscription["endpoint"]) == 2
    with billing_app.app_context():
        [row] = db.session.scalars(select(StoryDelivery)).all()
        assert (row.status, row.attempts) == ("delivered", 2)


@pytest.mark.parametrize(("status", "reason"), [(500, "answered 500"), (413, "answered 413")])
def test_5xx_gives_up_after_the_limit_and_413_fails_at_once(
    billing_app: Flask,
    reader: FlaskClient,
    push: PushStandIn,
    sends: LostSends,
    status: int,
    reason: str,
) -> None:
    from paywall.notifications.tasks import run_story

    subscription, _ = opt_in(reader, push)
    push.fail(subscription["endpoint"], status)
    sends.lose()
    publish(billing_app)
    run_story(billing_app, "story-1", wait=5)
    assert counts(billing_app)["failed"] == 1
    assert push.posts(subscription["endpoint"]) == (3 if status == 500 else 1)
    with billing_app.app_context():
        [row] = db.session.scalars(select(StoryDelivery)).all()
        assert reason in (row.reason or "")


def test_timeouts_are_retried(
    billing_app: Flask,
    reader: FlaskClient,
    push: PushStandIn,
    monkeypatch: pytest.MonkeyPatch,
    sends: LostSends,
) -> None:
    import requests

    from paywall.notifications.tasks import run_story

    subscription, _ = opt_in(reader, push)
    sends.lose()
    publish(billing_app)
    real_post = requests.Session.post
    calls = {"n": 0}

    def slow_then_fine(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise requests.Timeout("push service too slow")
        return real_post(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "post", slow_then_fine)
    run_story(billing_app, "story-1", wait=5)
    assert len(push.messages(subscription["endpoint"])) == 1
    assert counts(billing_app)["delivered"] == 1


def test_the_same_job_twice_at_once_sends_one_message_per_subscription(
    billing_app: Flask,
    billing_auth: AuthActions,
    stripe_actions: Stripe,
    push: PushStandIn,
    sends: LostSends,
) -> None:
    from paywall.notifications.tasks import run_story

    endpoints = []
    browser, _ = premium(stripe_actions, billing_auth, "many@example.com")
    for i in range(4):
        device = billing_auth.browser("many@example.com", name=f"Device {i}")
        endpoints.append(opt_in(device, push)[0]["endpoint"])
    sends.lose()
    publish(billing_app)
    threads = [threading.Thread(target=run_story, args=(billing_app, "story-1")) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_story(billing_app, "story-1")
    assert [push.posts(e) for e in endpoints] == [1, 1, 1, 1]
    assert counts(billing_app)["delivered"] == 4


# -- the newsroom's side --------------------------------------------------------------------------
def test_stories_need_a_publisher_key(billing_app: Flask, reader: FlaskClient) -> None:
    client = billing_app.test_client()
    body = {"id": "s", "title": "t", "url": "https://news.test/a", "topics": []}
    assert client.post("/api/v1/stories", json=body).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 40}
    assert client.post("/api/v1/stories", json=body, headers=wrong).status_code == 401
    session_token = reader.get("/api/v1/sessions")  # a reader's session is not a publisher key
    assert session_token.status_code == 200
    assert client.get("/api/v1/stories/s", headers=wrong).status_code == 401
    assert client.get("/api/v1/stories/unknown", headers=CMS).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "https://evil.example/politics"}, "url"),
        ({"url": "https://news.test.evil.example/a"}, "url"),
        ({"topics": ["astrology"]}, "topics"),
        ({"urgency": "very-high"}, "urgency"),
        ({"title": ""}, "title"),
        ({"id": "has spaces"}, "id"),
    ],
)
def test_bad_story_is_422_and_nothing_is_written(
    billing_app: Flask, change: dict[str, Any], field: str
) -> None:
    response = publish(billing_app, **change)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    with billing_app.app_context():
        assert db.session.scalars(select(StoryDelivery)).all() == []
    assert billing_app.test_client().get("/api/v1/stories/story-1", headers=CMS).status_code == 404


def test_long_summary_is_cut_to_keep_the_push_small(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn
) -> None:
    subscription, _ = opt_in(reader, push)
    publish(billing_app, summary="𝄞" * 1000, title="ü" * 200)  # 4-byte characters
    [message] = push.messages(subscription["endpoint"])
    assert len(message.payload) <= 3072
    assert message.json()["body"].endswith("…")


def test_cli_publishes_and_prints_counts(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn
) -> None:
    subscription, _ = opt_in(reader, push)
    result = billing_app.test_cli_runner().invoke(
        args=[
            "notifications",
            "publish",
            "--id",
            "cli-1",
            "--title",
            "From the CLI",
            "--url",
            "https://news.test/world/a",
            "--topic",
            "world",
        ]
    )
    assert result.exit_code == 0, result.output
    assert '"delivered": 1' in result.output
    assert push.messages(subscription["endpoint"])[0].json()["title"] == "From the CLI"
    bad = billing_app.test_cli_runner().invoke(
        args=["notifications", "publish", "--id", "x", "--title", "t", "--url", "https://evil/"]
    )
    assert bad.exit_code != 0 and "url" in bad.output


# -- email alerts ---------------------------------------------------------------------------------
def test_email_alert_once_with_one_click_unsubscribe(
    billing_app: Flask, reader: FlaskClient, mailbox: Mailbox
) -> None:
    assert (
        reader.put("/api/v1/notifications/preferences", json={"email_alerts": True}).status_code
        == 200
    )
    mailbox.clear()
    publish(billing_app)
    [email] = mailbox.wait_for(1)
    assert email["To"] == "premium@example.com"
    assert email["Subject"] == "Parliament votes on the budget"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = email["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://paywall.test/notifications/unsubscribe?token=")
    assert "https://news.test/politics/budget-vote" in body_of(email)
    assert link in body_of(email)  # the unsubscribe link is in the text too
    assert counts(billing_app)["email"]["delivered"] == 1

    path = link.removeprefix("https://paywall.test")
    client = billing_app.test_client()
    assert client.get(path).status_code == 200  # a link scanner's GET changes nothing
    assert reader.get("/api/v1/notifications/preferences").get_json()["email_alerts"] is True
    one_click = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert reader.get("/api/v1/notifications/preferences").get_json()["email_alerts"] is False
    assert client.post(path[:-3] + "xyz", data={}).status_code == 400

    publish(billing_app, story_id="story-2")
    assert len(mailbox.messages) == 1


def test_email_alerts_need_the_feature(billing_app: Flask, billing_auth: AuthActions) -> None:
    billing_auth.sign_up("free@example.com")
    free = billing_auth.browser("free@example.com")
    response = free.put("/api/v1/notifications/preferences", json={"email_alerts": True})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "feature_required"


def test_sweep_finishes_a_story_whose_fan_out_never_started(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, sends: LostSends
) -> None:
    subscription, _ = opt_in(reader, push)
    sends.lose()  # the broker lost the job, and nothing swept it
    assert publish(billing_app).status_code == 202
    assert push.posts(subscription["endpoint"]) == 0
    sends.restore()
    runner = billing_app.test_cli_runner()
    result = runner.invoke(args=["notifications", "sweep", "--older-than", "0"])
    assert result.exit_code == 0 and "swept 1" in result.output, result.output
    assert len(push.messages(subscription["endpoint"])) == 1
    again = runner.invoke(args=["notifications", "sweep", "--older-than", "0"])
    assert "swept 0" in again.output and push.posts(subscription["endpoint"]) == 1


def test_publishing_queues_the_fan_out_and_sends_nothing_in_the_request(
    billing_app: Flask, reader: FlaskClient, push: PushStandIn, sends: LostSends
) -> None:
    from paywall.notifications.tasks import run_story
    from paywall.queue import Job

    subscription, _ = opt_in(reader, push)
    sends.lose()
    assert publish(billing_app).status_code == 202
    assert push.posts(subscription["endpoint"]) == 0  # no worker ran: nothing was sent
    with billing_app.app_context():
        jobs = db.session.execute(
            select(Job.task, Job.args, Job.finished_at).where(Job.task.like("notifications.%"))
        ).all()
        assert [tuple(j) for j in jobs] == [("notifications.plan_story", ["story-1"], None)]
        assert db.session.scalars(select(StoryDelivery)).all() == []  # not even planned
        db.session.remove()
    assert publish(billing_app).status_code == 200  # the same id again queues nothing more
    with billing_app.app_context():
        assert len(db.session.scalars(select(Job).where(Job.task.like("notif%"))).all()) == 1
        db.session.remove()
    run_story(billing_app, "story-1")
    assert len(push.messages(subscription["endpoint"])) == 1


def test_plan_job_queues_one_delivery_job_per_batch(
    billing_app: Flask,
    billing_auth: AuthActions,
    stripe_actions: Stripe,
    push: PushStandIn,
    sends: LostSends,
) -> None:
    from paywall.queue import Job

    first, _ = premium(stripe_actions, billing_auth, "batches@example.com")
    browsers = [first] + [billing_auth.browser("batches@example.com", f"D{i}") for i in range(3)]
    endpoints = [opt_in(browser, push)[0]["endpoint"] for browser in browsers]
    sends.lose()
    publish(billing_app)
    with billing_app.app_context():
        [plan] = db.session.scalars(select(Job).where(Job.task.like("notif%"))).all()
        task = billing_app.extensions["celery"].tasks[plan.task]
        db.session.remove()
    task.apply(args=plan.args, kwargs={"job_id": plan.id})  # as a worker runs it
    with billing_app.app_context():
        jobs = db.session.scalars(select(Job).where(Job.task.like("notif%")).order_by(Job.id)).all()
        assert [(j.task, j.args, j.outcome) for j in jobs] == [
            ("notifications.plan_story", ["story-1"], "done"),
            ("notifications.deliver_batch", ["story-1", 0], None),
            ("notifications.deliver_batch", ["story-1", 1], None),
        ]  # 4 subscriptions in batches of 3
        db.session.remove()
    assert sum(push.posts(e) for e in endpoints) == 0
    for job_row in jobs[1:]:
        task = billing_app.extensions["celery"].tasks[job_row.task]
        task.apply(args=job_row.args, kwargs={"job_id": job_row.id})
        task.apply(args=job_row.args, kwargs={"job_id": job_row.id})  # delivered twice
    assert [push.posts(e) for e in endpoints] == [1] * 4
    assert counts(billing_app)["delivered"] == 4
