"""Customers: create, retrieve, update, list, delete (and what deletion does)."""

from __future__ import annotations

import pytest
import stripe

from stripe_standin import StandIn

from .conftest import Subscribed, event_types


def test_customer_crud(standin: StandIn, stripe_client: stripe.StripeClient) -> None:
    created = stripe_client.v1.customers.create(
        params={"email": "a@example.com", "metadata": {"paywall_account_id": "acct_1"}}
    )
    assert created.id.startswith("cus_") and created.object == "customer"
    assert created.email == "a@example.com"
    assert created.livemode is False

    fetched = stripe_client.v1.customers.retrieve(created.id)
    assert fetched.metadata["paywall_account_id"] == "acct_1"

    updated = stripe_client.v1.customers.update(
        created.id, params={"name": "Ada", "email": "ada@example.com"}
    )
    assert (updated.name, updated.email) == ("Ada", "ada@example.com")

    stripe_client.v1.customers.create(params={"email": "b@example.com"})
    by_email = stripe_client.v1.customers.list(params={"email": "ada@example.com"})
    assert [c.id for c in by_email.data] == [created.id]

    deleted = stripe_client.v1.customers.delete(created.id)
    assert deleted.to_dict() == {"id": created.id, "object": "customer", "deleted": True}
    # Retrieving a deleted customer answers the deleted shape, like Stripe.
    again = stripe_client.v1.customers.retrieve(created.id)
    assert again.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.update(created.id, params={"name": "Gone"})
    assert caught.value.code == "resource_missing"
    assert created.id not in [c.id for c in stripe_client.v1.customers.list().data]

    assert event_types(standin) == [
        "customer.created",
        "customer.updated",
        "customer.created",
        "customer.deleted",
    ]
    updated_event = next(e for e in standin.events if e["type"] == "customer.updated")
    assert updated_event["data"]["previous_attributes"] == {"email": "a@example.com", "name": None}


def test_deleting_a_customer_cancels_its_subscriptions(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    stripe_client.v1.customers.delete(subscribed.customer.id)
    sub = stripe_client.v1.subscriptions.retrieve(subscribed.subscription.id)
    assert sub.status == "canceled"
    assert sub.ended_at is not None
    assert event_types(standin) == ["customer.subscription.deleted", "customer.deleted"]
    assert (
        stripe_client.v1.subscriptions.list(params={"customer": subscribed.customer.id}).data == []
    )


def test_missing_customer_is_a_typed_404(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.customers.retrieve("cus_doesnotexist")
    error = caught.value
    assert error.http_status == 404
    assert error.code == "resource_missing"
    assert error.json_body == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "message": "No such customer: 'cus_doesnotexist'",
            "param": "id",
        }
    }
    assert error.request_id.startswith("req_")
