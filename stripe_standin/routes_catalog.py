"""REST endpoints for products and prices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import objects
from .errors import StripeError, invalid, missing_param
from .params import (
    apply_metadata,
    as_bool,
    as_dict,
    as_int,
    as_str,
    as_str_list,
    check_known,
    choice,
    require,
)
from .render import LIST_PARAMS, emit, filter_created, paginate, present
from .routing import Routes
from .store import Store, new_id

routes = Routes()

PRODUCT_FIELDS = ("name", "description", "statement_descriptor", "unit_label", "url", "tax_code")
INTERVALS = ("day", "week", "month", "year")
LOOKUP_KEY_MAX = 200


# -- products --------------------------------------------------------------------------------


def _product_fields(params: dict[str, Any], product: dict[str, Any]) -> None:
    for name in PRODUCT_FIELDS:
        if name in params:
            value = params[name]
            product[name] = None if value == "" else as_str(value, name)
    if "active" in params:
        product["active"] = as_bool(params["active"], "active")
    if "metadata" in params:
        product["metadata"] = apply_metadata(product["metadata"], params["metadata"])
    if "images" in params:
        product["images"] = (
            [] if params["images"] == "" else as_str_list(params["images"], "images")
        )


@routes.add("/products", "POST")
def create_product(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(
        params, (*PRODUCT_FIELDS, "id", "active", "metadata", "images", "default_price_data")
    )
    name = as_str(require(params, "name"), "name")
    product_id = as_str(params.get("id") or new_id("prod_", 14), "id")
    if store.get("product", product_id) is not None:
        raise StripeError("Product already exists.", code="resource_already_exists", param="id")
    product = objects.product(id=product_id, created=store.now(), name=name)
    _product_fields(params, product)
    store.add("product", product)
    emit(store, "product.created", product)
    if "default_price_data" in params:
        data = as_dict(params["default_price_data"], "default_price_data")
        check_known(data, ("currency", "unit_amount", "recurring"), "default_price_data")
        default = _new_price(store, {**data, "product": product_id}, "default_price_data")
        with _product_update(store, product):
            product["default_price"] = default["id"]
    return present(store, product)


@contextmanager
def _product_update(store: Store, product: dict[str, Any]) -> Iterator[None]:
    """Emit ``product.updated`` with previous_attributes if the product changed."""
    before = present(store, product)
    yield
    if present(store, product) != before:
        product["updated"] = store.now()
        emit(store, "product.updated", product, before)


@routes.add("/products/<product_id>", "GET")
def get_product(store: Store, params: dict[str, Any], product_id: str) -> dict[str, Any]:
    return present(store, store.require("product", product_id))


@routes.add("/products/<product_id>", "POST")
def update_product(store: Store, params: dict[str, Any], product_id: str) -> dict[str, Any]:
    check_known(params, (*PRODUCT_FIELDS, "active", "metadata", "images", "default_price"))
    product = store.require("product", product_id)
    with _product_update(store, product):
        _product_fields(params, product)
        if "default_price" in params:
            price = store.require("price", params["default_price"], "default_price")
            if price["product"] != product_id:
                raise invalid("The default price must belong to this product.", "default_price")
            product["default_price"] = price["id"]
    return present(store, product)


@routes.add("/products/<product_id>", "DELETE")
def delete_product(store: Store, params: dict[str, Any], product_id: str) -> dict[str, Any]:
    product = store.require("product", product_id)
    if any(price["product"] == product_id for price in store.all("price")):
        raise invalid("This product cannot be deleted because it has one or more prices.")
    del store.objects["product"][product_id]
    emit(store, "product.deleted", product)
    return {"id": product_id, "object": "product", "deleted": True}


@routes.add("/products", "GET")
def list_products(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, (*LIST_PARAMS, "active", "ids", "url", "shippable"))
    items = filter_created(store.all("product"), params.get("created"))
    if "active" in params:
        active = as_bool(params["active"], "active")
        items = [p for p in items if p["active"] == active]
    if "ids" in params:
        wanted = set(as_str_list(params["ids"], "ids"))
        items = [p for p in items if p["id"] in wanted]
    if "url" in params:
        items = [p for p in items if p["url"] == params["url"]]
    return paginate(store, items, params, "/v1/products")


# -- prices ----------------------------------------------------------------------------------


def _claim_lookup_key(store: Store, price: dict[str, Any], key: str | None, transfer: bool) -> None:
    """Give ``price`` the lookup key; it must be unused unless ``transfer`` moves it."""
    if key is not None and len(key) > LOOKUP_KEY_MAX:
        raise invalid(f"lookup_key must be at most {LOOKUP_KEY_MAX} characters.", "lookup_key")
    if key:
        for other in store.all("price"):
            if other["id"] != price["id"] and other["lookup_key"] == key:
                if not transfer:
                    raise invalid(
                        f"A price (`{other['id']}`) already uses that lookup key.",
                        "lookup_key",
                        code="lookup_key_exists",
                    )
                before = present(store, other)
                other["lookup_key"] = None
                emit(store, "price.updated", other, before)
    price["lookup_key"] = key or None


def _recurring(value: Any, param: str) -> dict[str, Any]:
    recurring = as_dict(value, param)
    check_known(recurring, ("interval", "interval_count", "usage_type"), param)
    interval = recurring.get("interval")
    if not interval:
        raise missing_param(f"{param}[interval]")
    choice(interval, f"{param}[interval]", INTERVALS)
    count = as_int(recurring.get("interval_count", 1), f"{param}[interval_count]")
    if (
        count < 1
        or objects.INTERVAL_SECONDS[interval] * count > objects.INTERVAL_SECONDS["year"] * 3
    ):
        raise invalid("The maximum interval is three years.", f"{param}[interval_count]")
    if recurring.get("usage_type", "licensed") != "licensed":
        raise invalid("The stand-in only supports usage_type=licensed.", f"{param}[usage_type]")
    return {"interval": interval, "interval_count": count}


def _new_price(store: Store, params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    def name(field: str) -> str:
        return f"{prefix}[{field}]" if prefix else field

    currency = as_str(require(params, "currency"), name("currency")).lower()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid(f"Invalid currency: {currency}.", name("currency"))
    if "unit_amount" in params:
        unit_amount = as_int(params["unit_amount"], name("unit_amount"))
    elif "unit_amount_decimal" in params:
        unit_amount = as_int(params["unit_amount_decimal"], name("unit_amount_decimal"))
    else:
        raise missing_param(name("unit_amount"))
    if unit_amount < 0:
        raise invalid("This value must be greater than or equal to 0.", name("unit_amount"))
    if params.get("billing_scheme", "per_unit") != "per_unit":
        raise invalid("The stand-in only supports billing_scheme=per_unit.", "billing_scheme")
    if "product_data" in params:
        data = as_dict(params["product_data"], "product_data")
        check_known(
            data,
            ("name", "active", "metadata", "statement_descriptor", "unit_label"),
            "product_data",
        )
        product = create_product(store, data)
    elif params.get("product"):
        product = store.require("product", params["product"], name("product"))
    else:
        raise missing_param(name("product"))
    recurring = (
        _recurring(params["recurring"], name("recurring")) if params.get("recurring") else None
    )
    price = objects.price(
        id=new_id("price_"),
        created=store.now(),
        product=product["id"],
        currency=currency,
        unit_amount=unit_amount,
        recurring=recurring,
        nickname=params.get("nickname") or None,
        metadata=apply_metadata({}, params.get("metadata", {})),
        active=as_bool(params.get("active", True), "active"),
        tax_behavior=choice(
            params.get("tax_behavior", "unspecified"),
            "tax_behavior",
            ("unspecified", "inclusive", "exclusive"),
        ),
    )
    transfer = as_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
    _claim_lookup_key(store, price, params.get("lookup_key") or None, transfer)
    store.add("price", price)
    emit(store, "price.created", price)
    return price


@routes.add("/prices", "POST")
def create_price(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(
        params,
        (
            "currency",
            "product",
            "product_data",
            "unit_amount",
            "unit_amount_decimal",
            "recurring",
            "lookup_key",
            "transfer_lookup_key",
            "nickname",
            "metadata",
            "active",
            "tax_behavior",
            "billing_scheme",
        ),
    )
    return present(store, _new_price(store, params))


@routes.add("/prices/<price_id>", "GET")
def get_price(store: Store, params: dict[str, Any], price_id: str) -> dict[str, Any]:
    return present(store, store.require("price", price_id))


@routes.add("/prices/<price_id>", "POST")
def update_price(store: Store, params: dict[str, Any], price_id: str) -> dict[str, Any]:
    check_known(
        params,
        ("active", "metadata", "lookup_key", "transfer_lookup_key", "nickname", "tax_behavior"),
    )
    price = store.require("price", price_id)
    before = present(store, price)
    if "active" in params:
        price["active"] = as_bool(params["active"], "active")
    if "metadata" in params:
        price["metadata"] = apply_metadata(price["metadata"], params["metadata"])
    if "nickname" in params:
        price["nickname"] = params["nickname"] or None
    if "tax_behavior" in params:
        price["tax_behavior"] = choice(
            params["tax_behavior"], "tax_behavior", ("unspecified", "inclusive", "exclusive")
        )
    if "lookup_key" in params:
        transfer = as_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
        _claim_lookup_key(store, price, as_str(params["lookup_key"], "lookup_key"), transfer)
    if present(store, price) != before:
        emit(store, "price.updated", price, before)
    return present(store, price)


@routes.add("/prices", "GET")
def list_prices(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(
        params, (*LIST_PARAMS, "active", "type", "product", "lookup_keys", "currency", "recurring")
    )
    items = filter_created(store.all("price"), params.get("created"))
    if "active" in params:
        active = as_bool(params["active"], "active")
        items = [p for p in items if p["active"] == active]
    if "type" in params:
        wanted = choice(params["type"], "type", ("recurring", "one_time"))
        items = [p for p in items if p["type"] == wanted]
    if "product" in params:
        items = [p for p in items if p["product"] == params["product"]]
    if "currency" in params:
        items = [p for p in items if p["currency"] == str(params["currency"]).lower()]
    if "lookup_keys" in params:
        keys = as_str_list(params["lookup_keys"], "lookup_keys")
        if len(keys) > 10:
            raise invalid("You can pass up to 10 lookup_keys.", "lookup_keys")
        items = [p for p in items if p["lookup_key"] in keys]
    if "recurring" in params:
        recurring = as_dict(params["recurring"], "recurring")
        check_known(recurring, ("interval", "usage_type", "meter"), "recurring")
        if "interval" in recurring:
            items = [
                p
                for p in items
                if p["recurring"] and p["recurring"]["interval"] == recurring["interval"]
            ]
    return paginate(store, items, params, "/v1/prices")
