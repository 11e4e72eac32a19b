"""Webhook events: Stripe's signature scheme, the drainable outbox, background delivery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from stripe_standin import StandIn
from stripe_standin.store import API_VERSION

from .conftest import CONTROL, WEBHOOK_SECRET, Subscribed


class Receiver:
    """A real HTTP endpoint that answers ``statuses`` in turn (then 200) and keeps requests."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.received.append((request.get_data(), dict(request.headers)))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response("ok", status=status)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}/api/v1/stripe/webhook"
    finally:
        server.shutdown()
        server.server_close()


def test_signatures_verify_with_the_sdk(
    standin: StandIn, stripe_client: stripe.StripeClient
) -> None:
    stripe_client.v1.customers.create(params={"email": "a@example.com"})
    [delivery] = standin.take_deliveries()
    assert delivery.headers["Content-Type"] == "application/json"
    header = delivery.headers["Stripe-Signature"]
    assert header.startswith("t=") and ",v1=" in header
    event = stripe.Webhook.construct_event(delivery.payload, header, WEBHOOK_SECRET)
    assert event.type == "customer.created" and event.data.object.email == "a@example.com"
    assert standin.take_deliveries() == []  # drained

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload, header, "whsec_other")
    forged = standin.sign(delivery.payload, secret="whsec_other")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload, forged, WEBHOOK_SECRET)
    stale = standin.sign(delivery.payload, timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload, stale, WEBHOOK_SECRET)
    tampered = delivery.payload.replace(b"a@example.com", b"b@example.com")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, header, WEBHOOK_SECRET)
    fresh = standin.sign(delivery.payload)
    assert stripe.Webhook.construct_event(delivery.payload, fresh, WEBHOOK_SECRET).id == event.id


def test_event_shape_and_request_info(standin: StandIn, stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "create-a"}
    )
    stripe_client.v1.customers.update(customer.id, params={"metadata": {"k": "v"}})
    created, updated = (json.loads(d.payload) for d in standin.take_deliveries())
    assert created["object"] == "event" and created["id"].startswith("evt_")
    assert created["api_version"] == API_VERSION
    assert created["request"]["idempotency_key"] == "create-a"
    assert created["request"]["id"] == customer.last_response.request_id
    assert "previous_attributes" not in created["data"]
    assert updated["data"]["previous_attributes"] == {"metadata": {"k": None}}
    assert updated["pending_webhooks"] == 0

    listed = stripe_client.v1.events.list(params={"type": "customer.updated"})
    assert [e.id for e in listed.data] == [updated["id"]]
    assert stripe_client.v1.events.retrieve(created["id"]).type == "customer.created"
    both = stripe_client.v1.events.list(params={"types": ["customer.created", "customer.updated"]})
    assert len(both.data) == 2


def test_outbox_over_http_and_redelivery(
    standin: StandIn, stripe_client: stripe.StripeClient
) -> None:
    stripe_client.v1.customers.create(params={"email": "a@example.com"})
    taken = requests.post(
        f"{standin.url}/_standin/deliveries/take", timeout=5, headers=CONTROL
    ).json()
    [delivery] = taken["deliveries"]
    assert set(delivery) == {"event_id", "type", "payload", "headers"}
    event = stripe.Webhook.construct_event(
        delivery["payload"], delivery["headers"]["Stripe-Signature"], WEBHOOK_SECRET
    )
    assert event.id == delivery["event_id"]
    assert requests.post(
        f"{standin.url}/_standin/deliveries/take", timeout=5, headers=CONTROL
    ).json() == {"deliveries": []}
    again = requests.post(
        f"{standin.url}/_standin/events/{event.id}/redeliver", timeout=5, headers=CONTROL
    ).json()
    assert again["event_id"] == event.id
    [redelivered] = standin.take_deliveries()
    assert json.loads(redelivered.payload)["id"] == event.id
    missing = requests.post(
        f"{standin.url}/_standin/events/evt_nope/redeliver", timeout=5, headers=CONTROL
    )
    assert missing.status_code == 404


def test_background_delivery_in_order_with_retries(
    standin: StandIn, subscribed: Subscribed, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    app.statuses = [500, 503]  # the first event fails twice before it is accepted
    standin.webhook_url = url
    standin.renew(subscribed.subscription.id)
    assert standin.wait_for_webhooks(timeout=10)

    types = [json.loads(body)["type"] for body, _ in app.received]
    assert types == [
        "invoice.created",
        "invoice.created",
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    for body, headers in app.received:
        assert headers["Content-Type"] == "application/json"
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], WEBHOOK_SECRET)
    assert all(e["pending_webhooks"] == 0 for e in standin.events[-6:])
    assert len(standin.take_deliveries()) == 6  # the outbox keeps a copy regardless


def test_undeliverable_events_are_given_up_after_five_attempts(
    standin: StandIn, stripe_client: stripe.StripeClient, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    app.statuses = [500] * 5
    standin.webhook_url = url
    customer = stripe_client.v1.customers.create(params={"email": "x@example.com"})
    stripe_client.v1.customers.update(customer.id, params={"name": "X"})
    assert standin.wait_for_webhooks(timeout=10)
    assert len(app.received) == 6  # 5 failed attempts, then the next event goes through
    report = requests.get(
        f"{standin.url}/_standin/webhook_attempts", timeout=5, headers=CONTROL
    ).json()
    first_event = standin.events[0]["id"]
    assert report["undelivered"] == [first_event]
    assert [a["status"] for a in report["attempts"]] == [500] * 5 + [200]
    assert standin.events[0]["pending_webhooks"] == 1
    assert standin.events[1]["pending_webhooks"] == 0
