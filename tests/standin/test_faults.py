"""Injected faults: errors, an unreachable Stripe, and answers lost after the work was done."""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from stripe_standin import StandIn

from .conftest import CONTROL, make_client


def test_transient_error_is_retried_with_the_same_key(
    standin: StandIn, stripe_client: stripe.StripeClient
) -> None:
    standin.add_fault("POST", "/v1/customers", mode="error", status=500, times=1)
    customer = stripe_client.v1.customers.create(params={"email": "retry@example.com"})
    log = [r for r in standin.requests if r.path == "/v1/customers"]
    assert [(r.status, r.fault) for r in log] == [(500, "error"), (200, None)]
    assert log[0].idempotency_key == log[1].idempotency_key  # the SDK reuses its key
    assert [c.id for c in stripe_client.v1.customers.list().data] == [customer.id]


def test_a_500_after_execution_began_is_replayed_for_every_retry_of_its_key(
    standin: StandIn,
) -> None:
    client = make_client(standin, max_network_retries=2)
    standin.add_fault("POST", "/v1/customers", mode="crash", times=1)
    with pytest.raises(stripe.APIError) as caught:
        client.v1.customers.create(params={"email": "crash@example.com"})
    assert caught.value.http_status == 500
    log = [r for r in standin.requests if r.path == "/v1/customers" and r.method == "POST"]
    # The SDK tried three times with one key; the stand-in ran the work once (the crash
    # undid it) and answered the two retries with the stored 500, as Stripe does.
    assert [(r.status, r.fault, r.replayed) for r in log] == [
        (500, "crash", False),
        (500, None, True),
        (500, None, True),
    ]
    assert len({r.idempotency_key for r in log}) == 1 and log[0].idempotency_key
    assert client.v1.customers.list().data == []
    assert standin.events == []
    # A new request (a new key) is new work: it succeeds.
    customer = client.v1.customers.create(params={"email": "crash@example.com"})
    assert [c.id for c in client.v1.customers.list().data] == [customer.id]


def test_persistent_error_surfaces_as_api_error(standin: StandIn) -> None:
    client = make_client(standin, max_network_retries=0)
    standin.add_fault("GET", "/v1/customers/*", mode="error", times=None)
    with pytest.raises(stripe.APIError) as caught:
        client.v1.customers.retrieve("cus_anything")
    assert caught.value.http_status == 500
    assert caught.value.json_body["error"]["type"] == "api_error"
    standin.clear_faults()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve("cus_anything")


def test_down_answers_503_to_everything_matching(standin: StandIn) -> None:
    client = make_client(standin, max_network_retries=0)
    response = requests.post(
        f"{standin.url}/_standin/faults",
        json={"method": "*", "path": "/v1/*", "mode": "down", "times": None},
        timeout=5,
        headers=CONTROL,
    )
    assert response.status_code == 200 and response.json()["status"] == 503
    with pytest.raises(stripe.APIError) as caught:
        client.v1.prices.list()
    assert caught.value.http_status == 503
    assert requests.get(f"{standin.url}/_standin/faults", timeout=5, headers=CONTROL).json()[
        "faults"
    ]
    assert requests.delete(f"{standin.url}/_standin/faults", timeout=5, headers=CONTROL).json() == {
        "faults": []
    }
    assert client.v1.prices.list().data == []


def test_lost_response_is_replayed_on_retry_and_creates_one_object(standin: StandIn) -> None:
    client = make_client(
        standin, max_network_retries=2, http_client=stripe.RequestsClient(timeout=1)
    )
    standin.add_fault("POST", "/v1/customers", mode="lose_response", delay=2.5)
    started = time.monotonic()
    customer = client.v1.customers.create(params={"email": "lost@example.com"})
    assert time.monotonic() - started < 10

    log = [r for r in standin.requests if r.path == "/v1/customers" and r.method == "POST"]
    assert len(log) == 2
    assert log[0].idempotency_key == log[1].idempotency_key
    assert log[0].fault == "lose_response" and not log[0].replayed
    assert log[1].replayed is True and log[1].status == 200
    customers = client.v1.customers.list().data
    assert [c.id for c in customers] == [customer.id]
    assert [e["type"] for e in standin.events] == ["customer.created"]

    http_log = requests.get(f"{standin.url}/_standin/requests", timeout=5, headers=CONTROL).json()[
        "requests"
    ]
    assert {"method", "path", "idempotency_key", "replayed", "status"} <= set(http_log[0])


def test_lost_response_without_retries_is_a_connection_error(standin: StandIn) -> None:
    client = make_client(
        standin, max_network_retries=0, http_client=stripe.RequestsClient(timeout=0.5)
    )
    standin.add_fault("POST", "/v1/products", mode="lose_response", delay=1.5)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.products.create(params={"name": "Created anyway"})
    # ...but the work was done, as when a real answer is lost on the way back.
    assert [p.name for p in make_client(standin).v1.products.list().data] == ["Created anyway"]
