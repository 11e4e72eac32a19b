"""Products and prices through the real SDK: lookup keys, expand, filters, errors."""

from __future__ import annotations

import pytest
import stripe

from stripe_standin import StandIn

from .conftest import Catalog, event_types


def test_find_price_by_lookup_key_with_product_expanded(
    stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    page = stripe_client.v1.prices.list(
        params={"lookup_keys": ["digital_monthly"], "expand": ["data.product"], "limit": 1}
    )
    assert [p.id for p in page.data] == [catalog.monthly.id]
    price = page.data[0]
    assert price.product.id == catalog.product.id
    assert price.product.name == "Digital access"
    assert price.product.metadata["max_devices"] == "3"
    assert price.recurring.interval == "month"
    assert price.unit_amount == 999
    assert price.livemode is False


def test_price_filters(stripe_client: stripe.StripeClient, catalog: Catalog) -> None:
    one_time = stripe_client.v1.prices.create(
        params={"product": catalog.product.id, "unit_amount": 500, "currency": "eur"}
    )
    assert one_time.type == "one_time" and one_time.recurring is None
    stripe_client.v1.prices.update(catalog.premium.id, params={"active": False})

    recurring = stripe_client.v1.prices.list(params={"active": True, "type": "recurring"})
    assert {p.id for p in recurring.data} == {catalog.monthly.id, catalog.yearly.id}
    by_product = stripe_client.v1.prices.list(params={"product": catalog.product.id})
    assert {p.id for p in by_product.data} == {
        catalog.monthly.id,
        catalog.yearly.id,
        one_time.id,
    }
    inactive = stripe_client.v1.prices.list(params={"active": False})
    assert [p.id for p in inactive.data] == [catalog.premium.id]
    yearly = stripe_client.v1.prices.list(params={"recurring": {"interval": "year"}})
    assert [p.id for p in yearly.data] == [catalog.yearly.id]


def test_lookup_key_is_unique_unless_transferred(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    standin.take_deliveries()
    new_monthly = {
        "product": catalog.product.id,
        "unit_amount": 1299,
        "currency": "eur",
        "recurring": {"interval": "month"},
        "lookup_key": "digital_monthly",
    }
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.prices.create(params=new_monthly)
    assert caught.value.http_status == 400
    assert caught.value.param == "lookup_key"
    assert catalog.monthly.id in caught.value.user_message

    moved = stripe_client.v1.prices.create(params={**new_monthly, "transfer_lookup_key": True})
    assert moved.lookup_key == "digital_monthly"
    assert stripe_client.v1.prices.retrieve(catalog.monthly.id).lookup_key is None
    found = stripe_client.v1.prices.list(params={"lookup_keys": ["digital_monthly"]})
    assert [p.id for p in found.data] == [moved.id]
    assert event_types(standin) == ["price.updated", "price.created"]

    # Updating onto a taken key fails too, and can transfer as well.
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.update(catalog.yearly.id, params={"lookup_key": "digital_monthly"})
    stripe_client.v1.prices.update(
        catalog.yearly.id, params={"lookup_key": "digital_monthly", "transfer_lookup_key": True}
    )
    assert stripe_client.v1.prices.retrieve(moved.id).lookup_key is None


def test_product_update_emits_previous_attributes(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog
) -> None:
    standin.take_deliveries()
    updated = stripe_client.v1.products.update(
        catalog.product.id,
        params={"name": "Digital", "metadata": {"max_devices": "", "tier": "digital"}},
    )
    assert updated.name == "Digital"
    assert updated.metadata.to_dict() == {"tier": "digital"}
    [event] = [e for e in standin.events if e["type"] == "product.updated"]
    assert event["data"]["previous_attributes"]["name"] == "Digital access"
    assert event["data"]["previous_attributes"]["metadata"] == {
        "max_devices": "3",
        "tier": None,
    }
    products = stripe_client.v1.products.list(params={"active": True})
    assert catalog.product.id in [p.id for p in products.data]


def test_price_validation_errors(stripe_client: stripe.StripeClient, catalog: Catalog) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.prices.create(params={"product": catalog.product.id, "unit_amount": 5})
    assert missing.value.code == "parameter_missing"
    assert missing.value.param == "currency"

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.prices.create(
            params={"product": catalog.product.id, "currency": "eur", "unit_amount": 5, "x": 1}
        )
    assert unknown.value.code == "parameter_unknown"

    with pytest.raises(stripe.InvalidRequestError) as no_product:
        stripe_client.v1.prices.create(
            params={"product": "prod_nope", "currency": "eur", "unit_amount": 5}
        )
    assert no_product.value.http_status == 404
    assert no_product.value.code == "resource_missing"
    assert no_product.value.param == "product"

    with pytest.raises(stripe.InvalidRequestError) as bad_int:
        stripe_client.v1.prices.create(
            params={"product": catalog.product.id, "currency": "eur", "unit_amount": "ten"}
        )
    assert bad_int.value.param == "unit_amount"


def test_product_with_custom_id_and_default_price(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(
        params={
            "id": "prod_digital",
            "name": "Digital",
            "default_price_data": {
                "currency": "usd",
                "unit_amount": 800,
                "recurring": {"interval": "month"},
            },
        }
    )
    assert product.id == "prod_digital"
    price = stripe_client.v1.prices.retrieve(product.default_price)
    assert price.product == "prod_digital" and price.unit_amount == 800
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.products.create(params={"id": "prod_digital", "name": "Again"})
    assert again.value.code == "resource_already_exists"
