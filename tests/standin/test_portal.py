"""The billing portal page: cancel at period end, renew again, switch plan, cancel now."""

from __future__ import annotations

import re

import requests
import stripe

from stripe_standin import StandIn

from .conftest import Catalog, Subscribed, event_types


def portal_url(client: stripe.StripeClient, customer_id: str) -> str:
    session = client.v1.billing_portal.sessions.create(
        params={"customer": customer_id, "return_url": "https://paywall.test/account"}
    )
    assert session.id.startswith("bps_") and session.livemode is False
    return session.url


def click(url: str, page: str, button_id: str) -> requests.Response:
    """Submit the form holding ``button_id`` with that button's name/value, like a browser."""
    forms = re.findall(r"<form method=\"post\"[^>]*>(.*?)</form>", page, re.S)
    form = next(f for f in forms if f'id="{button_id}"' in f)
    data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    button = re.search(rf'<button[^>]*name="([^"]+)" value="([^"]+)" id="{button_id}"', form)
    assert button, f"no button #{button_id}"
    data[button.group(1)] = button.group(2)
    return requests.post(url, data=data, timeout=5)


def test_portal_cancel_and_resume_renewal(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    url = portal_url(stripe_client, subscribed.customer.id)
    page = requests.get(url, timeout=5).text
    assert "Digital access" in page and 'id="status">active<' in page
    assert 'id="cancel-at-period-end">no<' in page
    assert 'href="https://paywall.test/account"' in page and 'id="return"' in page

    after = click(url, page, "cancel")
    assert after.status_code == 200 and 'id="cancel-at-period-end">yes<' in after.text
    sub = stripe_client.v1.subscriptions.retrieve(subscribed.subscription.id)
    assert sub.cancel_at_period_end is True and sub.status == "active"
    assert sub.cancel_at == sub["items"].data[0].current_period_end
    [event] = [e for e in standin.events if e["type"] == "customer.subscription.updated"]
    assert event["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert event_types(standin) == ["customer.subscription.updated"]

    renewed = click(url, after.text, "resume-renewal")
    assert 'id="cancel-at-period-end">no<' in renewed.text
    sub = stripe_client.v1.subscriptions.retrieve(subscribed.subscription.id)
    assert sub.cancel_at_period_end is False and sub.cancel_at is None
    assert event_types(standin) == ["customer.subscription.updated"]


def test_portal_switch_plan(
    standin: StandIn,
    stripe_client: stripe.StripeClient,
    catalog: Catalog,
    subscribed: Subscribed,
) -> None:
    url = portal_url(stripe_client, subscribed.customer.id)
    page = requests.get(url, timeout=5).text
    assert 'id="switch-premium_monthly"' in page and 'id="switch-digital_yearly"' in page
    assert 'id="switch-digital_monthly"' not in page  # the current plan

    period_end = subscribed.subscription["items"].data[0].current_period_end
    click(url, page, "switch-premium_monthly")
    sub = stripe_client.v1.subscriptions.retrieve(subscribed.subscription.id)
    item = sub["items"].data[0]
    assert item.price.id == catalog.premium.id
    assert item.id == subscribed.subscription["items"].data[0].id
    assert item.current_period_end == period_end  # same interval: period kept
    [event] = [e for e in standin.events if e["type"] == "customer.subscription.updated"]
    previous = event["data"]["previous_attributes"]
    assert previous["items"]["data"][0]["price"]["id"] == catalog.monthly.id
    assert event_types(standin) == ["customer.subscription.updated"]

    # Monthly -> yearly restarts the billing period and invoices right away.
    click(url, requests.get(url, timeout=5).text, "switch-digital_yearly")
    sub = stripe_client.v1.subscriptions.retrieve(
        subscribed.subscription.id, params={"expand": ["latest_invoice"]}
    )
    assert sub["items"].data[0].price.recurring.interval == "year"
    assert sub.latest_invoice.billing_reason == "subscription_update"
    assert sub.latest_invoice.amount_paid == 9900
    assert event_types(standin)[-1] == "customer.subscription.updated"


def test_portal_cancel_now(
    standin: StandIn, stripe_client: stripe.StripeClient, subscribed: Subscribed
) -> None:
    url = portal_url(stripe_client, subscribed.customer.id)
    after = click(url, requests.get(url, timeout=5).text, "cancel-now")
    assert 'id="no-subscription"' in after.text
    sub = stripe_client.v1.subscriptions.retrieve(subscribed.subscription.id)
    assert sub.status == "canceled" and sub.ended_at is not None
    assert sub.cancellation_details.reason == "cancellation_requested"
    assert event_types(standin) == ["customer.subscription.deleted"]
