"""Stripe's HTTP semantics: auth, idempotency keys, pagination, expand, error shapes."""

from __future__ import annotations

import pytest
import requests
import stripe

from stripe_standin import StandIn
from stripe_standin.store import API_VERSION

from .conftest import API_KEY, Catalog, Subscribed, make_client


def test_wrong_or_missing_api_key_is_authentication_error(standin: StandIn) -> None:
    wrong = stripe.StripeClient("sk_test_standin_wrong", base_addresses={"api": standin.url})
    with pytest.raises(stripe.AuthenticationError) as caught:
        wrong.v1.customers.list()
    assert caught.value.http_status == 401
    assert caught.value.json_body["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key" in caught.value.user_message

    response = requests.get(f"{standin.url}/v1/customers", timeout=5)
    assert response.status_code == 401
    assert "did not provide an API key" in response.json()["error"]["message"]
    # Stripe also accepts the key as basic-auth user name.
    basic = requests.get(f"{standin.url}/v1/customers", auth=(API_KEY, ""), timeout=5)
    assert basic.status_code == 200


def test_same_idempotency_key_replays_the_same_response(
    standin: StandIn, stripe_client: stripe.StripeClient
) -> None:
    params = {"email": "once@example.com"}
    first = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    second = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    assert first.id == second.id
    assert len(stripe_client.v1.customers.list().data) == 1
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    log = [r for r in standin.requests if r.path == "/v1/customers" and r.method == "POST"]
    assert [(r.idempotency_key, r.replayed, r.status) for r in log] == [
        ("k-1", False, 200),
        ("k-1", True, 200),
    ]
    assert [e["type"] for e in standin.events] == ["customer.created"]


def test_same_key_different_params_is_idempotency_error(
    stripe_client: stripe.StripeClient,
) -> None:
    stripe_client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "k-2"}
    )
    with pytest.raises(stripe.IdempotencyError) as caught:
        stripe_client.v1.customers.create(
            params={"email": "b@example.com"}, options={"idempotency_key": "k-2"}
        )
    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"


def test_idempotency_keys_expire_after_24_hours(
    standin: StandIn, stripe_client: stripe.StripeClient
) -> None:
    params = {"email": "a@example.com"}
    first = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-3"})
    standin.advance_clock(24 * 3600 + 1)
    second = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "k-3"})
    assert first.id != second.id


def test_failed_validation_is_not_stored_under_the_key(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create(
            params={"product": "prod_missing", "currency": "eur", "unit_amount": 1},
            options={"idempotency_key": "k-4"},
        )
    stripe_client.v1.products.create(params={"id": "prod_missing", "name": "Now exists"})
    price = stripe_client.v1.prices.create(
        params={"product": "prod_missing", "currency": "eur", "unit_amount": 1},
        options={"idempotency_key": "k-4"},
    )
    assert price.product == "prod_missing"


def test_failed_request_changes_nothing(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    """Requests are atomic: an error part-way leaves no trace (objects or events)."""
    events_before = len(standin.events)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.products.create(
            params={
                "name": "Half",
                "default_price_data": {"currency": "eur", "unit_amount": "oops"},
            }
        )
    assert [p.name for p in stripe_client.v1.products.list().data] == [
        "Premium",
        "Digital access",
    ]
    assert len(standin.events) == events_before


def test_auto_paging_iter_over_more_than_100_objects(
    stripe_client: stripe.StripeClient,
) -> None:
    created = [
        stripe_client.v1.customers.create(params={"email": f"r{i}@example.com"}).id
        for i in range(125)
    ]
    first = stripe_client.v1.customers.list(params={"limit": 100})
    assert len(first.data) == 100 and first.has_more is True
    assert first.url == "/v1/customers"
    assert first.data[0].id == created[-1]  # newest first

    seen = [c.id for c in stripe_client.v1.customers.list(params={"limit": 30}).auto_paging_iter()]
    assert seen == list(reversed(created))

    page = stripe_client.v1.customers.list(params={"limit": 10, "starting_after": created[50]})
    assert [c.id for c in page.data] == list(reversed(created[40:50]))
    before = stripe_client.v1.customers.list(params={"limit": 5, "ending_before": created[50]})
    assert [c.id for c in before.data] == list(reversed(created[51:56]))
    assert before.has_more is True
    backwards = stripe_client.v1.customers.list(
        params={"limit": 40, "ending_before": created[0]}
    ).auto_paging_iter()
    assert len(list(backwards)) == 124

    with pytest.raises(stripe.InvalidRequestError) as too_many:
        stripe_client.v1.customers.list(params={"limit": 101})
    assert too_many.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as bad_cursor:
        stripe_client.v1.customers.list(params={"starting_after": "cus_nope"})
    assert bad_cursor.value.param == "starting_after"


def test_expand_errors_and_nested_expansion(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.prices.list(params={"expand": ["product"]})
    assert "data.product" in caught.value.user_message
    price = stripe_client.v1.prices.retrieve(catalog.monthly.id, params={"expand": ["product"]})
    assert price.product.name == "Digital access"


def test_unknown_endpoint_and_headers(standin: StandIn) -> None:
    client = make_client(standin)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.raw_request("get", "/v1/terminal/readers")
    assert caught.value.http_status == 404
    assert "Unrecognized request URL" in caught.value.user_message
    response = requests.get(
        f"{standin.url}/v1/customers", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert response.headers["Request-Id"].startswith("req_")
    assert response.headers["Stripe-Version"] == API_VERSION
    assert response.json() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": "/v1/customers",
    }


def test_nested_expand(stripe_client: stripe.StripeClient, subscribed: Subscribed) -> None:
    sub = stripe_client.v1.subscriptions.retrieve(
        subscribed.subscription.id,
        params={"expand": ["items.data.price.product", "customer", "latest_invoice"]},
    )
    assert sub["items"].data[0].price.product.name == "Digital access"
    assert sub.customer.email == "reader@example.com"
    assert sub.latest_invoice.status == "paid"
    with pytest.raises(stripe.InvalidRequestError) as too_deep:
        stripe_client.v1.subscriptions.retrieve(
            subscribed.subscription.id, params={"expand": ["a.b.c.d.e"]}
        )
    assert too_deep.value.param == "expand"


def test_stripe_version_other_majors_are_refused(standin: StandIn) -> None:
    for version, status in (
        (API_VERSION, 200),
        ("2026-08-26.dahlia", 200),  # same major: same shapes (additive releases)
        ("2025-03-31.basil", 400),
        ("2026-09-30.endive", 400),
    ):
        response = requests.get(
            f"{standin.url}/v1/customers",
            headers={"Authorization": f"Bearer {API_KEY}", "Stripe-Version": version},
            timeout=5,
        )
        assert response.status_code == status, version
        assert response.headers["Stripe-Version"] == API_VERSION
        if status == 400:
            assert response.json()["error"]["code"] == "api_version_unsupported"
