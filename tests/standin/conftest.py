"""Fixtures for the Stripe stand-in's own tests: one server per module, reset between tests,
driven through the real ``stripe`` SDK (no mocking)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import stripe

from stripe_standin import StandIn

API_KEY = "sk_test_standin_" + secrets.token_hex(12)
#: What the /_standin/ control endpoints need (they list customers and move money).
CONTROL = {"Authorization": f"Bearer {API_KEY}"}
WEBHOOK_SECRET = "whsec_standin_" + secrets.token_hex(16)
SUCCESS_CARD = "4242 4242 4242 4242"
DECLINE_CARD = "4000 0000 0000 0341"


@pytest.fixture(scope="module")
def standin_server() -> Iterator[StandIn]:
    with StandIn(API_KEY, WEBHOOK_SECRET, webhook_backoff=0.05) as server:
        yield server


@pytest.fixture
def standin(standin_server: StandIn) -> Iterator[StandIn]:
    standin_server.reset()
    standin_server.webhook_url = None
    yield standin_server
    standin_server.clear_faults()
    standin_server.webhook_url = None


def make_client(standin: StandIn, **kwargs: Any) -> stripe.StripeClient:
    kwargs.setdefault("max_network_retries", 2)
    return stripe.StripeClient(API_KEY, base_addresses={"api": standin.url}, **kwargs)


@pytest.fixture
def stripe_client(standin: StandIn) -> stripe.StripeClient:
    return make_client(standin)


@dataclass
class Catalog:
    product: Any
    monthly: Any
    yearly: Any
    premium: Any


@pytest.fixture
def catalog(stripe_client: stripe.StripeClient) -> Catalog:
    product = stripe_client.v1.products.create(
        params={"name": "Digital access", "metadata": {"max_devices": "3"}}
    )
    premium_product = stripe_client.v1.products.create(params={"name": "Premium"})

    def price(product_id: str, amount: int, interval: str, key: str) -> Any:
        return stripe_client.v1.prices.create(
            params={
                "product": product_id,
                "unit_amount": amount,
                "currency": "eur",
                "recurring": {"interval": interval},
                "lookup_key": key,
                "nickname": key,
            }
        )

    return Catalog(
        product=product,
        monthly=price(product.id, 999, "month", "digital_monthly"),
        yearly=price(product.id, 9900, "year", "digital_yearly"),
        premium=price(premium_product.id, 1999, "month", "premium_monthly"),
    )


def start_checkout(client: stripe.StripeClient, price_id: str, **extra: Any) -> Any:
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price_id, "quantity": 1}],
        "success_url": "https://paywall.test/billing/return?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://news.test/?checkout=canceled",
        **extra,
    }
    return client.v1.checkout.sessions.create(params=params)


def pay(session_url: str, card: str = SUCCESS_CARD, **form: str) -> requests.Response:
    """Submit the hosted Checkout page as a browser would."""
    page = requests.get(session_url, timeout=10)
    assert page.status_code == 200, page.text
    return requests.post(
        session_url, data={"card_number": card, **form}, allow_redirects=False, timeout=10
    )


@dataclass
class Subscribed:
    customer: Any
    session: Any
    subscription: Any


@pytest.fixture
def subscribed(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> Subscribed:
    """A customer with an active monthly subscription bought through Checkout."""
    customer = stripe_client.v1.customers.create(
        params={"email": "reader@example.com", "name": "Rea Der"}
    )
    session = start_checkout(
        stripe_client,
        catalog.monthly.id,
        customer=customer.id,
        client_reference_id="acct_1",
        subscription_data={"metadata": {"paywall_account_id": "acct_1"}},
    )
    assert pay(session.url).status_code == 303
    session = stripe_client.v1.checkout.sessions.retrieve(session.id)
    subscription = stripe_client.v1.subscriptions.retrieve(session.subscription)
    standin.take_deliveries()
    return Subscribed(customer, session, subscription)


def event_types(standin: StandIn) -> list[str]:
    return [delivery.type for delivery in standin.take_deliveries()]
