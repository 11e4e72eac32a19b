"""REST endpoints for customers, Checkout Sessions and billing portal sessions."""

from __future__ import annotations

from typing import Any

from . import billing, objects
from .errors import StripeError, invalid, missing_param, no_such
from .params import (
    apply_metadata,
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_str,
    as_str_list,
    check_known,
    choice,
    require,
)
from .render import LIST_PARAMS, emit, filter_created, paginate, positional_order, present
from .routing import Routes
from .store import Store, new_id

routes = Routes()

CUSTOMER_FIELDS = ("email", "name", "phone", "description")
CUSTOMER_PARAMS = (*CUSTOMER_FIELDS, "metadata", "preferred_locales", "address")
SESSION_TTL = 24 * 3600
SESSION_MIN_TTL = 30 * 60


def unsupported(param: str) -> StripeError:
    return invalid(f"The Stripe stand-in does not support `{param}`.", param, "parameter_unknown")


# -- customers -------------------------------------------------------------------------------


def _customer_fields(params: dict[str, Any], customer: dict[str, Any]) -> None:
    for name in CUSTOMER_FIELDS:
        if name in params:
            customer[name] = None if params[name] == "" else as_str(params[name], name)
    if "metadata" in params:
        customer["metadata"] = apply_metadata(customer["metadata"], params["metadata"])
    if "preferred_locales" in params:
        value = params["preferred_locales"]
        customer["preferred_locales"] = (
            [] if value == "" else as_str_list(value, "preferred_locales")
        )
    if "address" in params:
        if params["address"] == "":
            customer["address"] = None
        else:
            address = as_dict(params["address"], "address")
            check_known(address, objects.NULL_ADDRESS, "address")
            customer["address"] = {**objects.NULL_ADDRESS, **(customer["address"] or {}), **address}


@routes.add("/customers", "POST")
def create_customer(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, CUSTOMER_PARAMS)
    with store.lock:
        customer = objects.customer(id=new_id("cus_", 14), created=store.now())
        _customer_fields(params, customer)
        store.add("customer", customer)
        emit(store, "customer.created", customer)
        return present(store, customer)


@routes.add("/customers/<customer_id>", "GET")
def get_customer(store: Store, params: dict[str, Any], customer_id: str) -> dict[str, Any]:
    customer = store.get("customer", customer_id)
    if customer is None:
        raise no_such("customer", customer_id)
    if customer_id in store.deleted:  # Stripe answers a deleted customer with its stub
        return objects.deleted_customer(customer_id)
    return present(store, customer)


@routes.add("/customers/<customer_id>", "POST")
def update_customer(store: Store, params: dict[str, Any], customer_id: str) -> dict[str, Any]:
    check_known(params, CUSTOMER_PARAMS)
    customer = store.require("customer", customer_id)
    before = present(store, customer)
    _customer_fields(params, customer)
    if present(store, customer) != before:
        emit(store, "customer.updated", customer, before)
    return present(store, customer)


@routes.add("/customers/<customer_id>", "DELETE")
def delete_customer(store: Store, params: dict[str, Any], customer_id: str) -> dict[str, Any]:
    check_known(params, ())
    return billing.delete_customer(store, store.require("customer", customer_id))


@routes.add("/customers", "GET")
def list_customers(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, (*LIST_PARAMS, "email", "test_clock"))
    items = [c for c in store.all("customer") if c["id"] not in store.deleted]
    items = filter_created(items, params.get("created"))
    if "email" in params:
        email = as_str(params["email"], "email")
        items = [c for c in items if c["email"] == email]
    return paginate(store, items, params, "/v1/customers")


# -- checkout sessions -----------------------------------------------------------------------


def _line_items(store: Store, value: Any) -> list[dict[str, Any]]:
    items = []
    currency = None
    for index, raw in enumerate(as_list(value, "line_items")):
        param = f"line_items[{index}]"
        item = as_dict(raw, param)
        if "price_data" in item:
            raise unsupported(f"{param}[price_data]")
        check_known(item, ("price", "quantity", "adjustable_quantity", "tax_rates"), param)
        if not item.get("price"):
            raise missing_param(f"{param}[price]")
        price = store.require("price", item["price"], f"{param}[price]")
        if "quantity" not in item:
            raise invalid(
                f"Quantity is required. Add `quantity` to `{param}`.", f"{param}[quantity]"
            )
        quantity = as_int(item["quantity"], f"{param}[quantity]")
        if quantity < 1:
            raise invalid("Quantity must be at least 1.", f"{param}[quantity]")
        if not price["active"]:
            raise invalid(
                "The price specified is inactive. This field only accepts active prices.",
                f"{param}[price]",
            )
        if price["type"] != "recurring":
            raise invalid(
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                f"{param}[price]",
            )
        if currency is not None and price["currency"] != currency:
            raise invalid("All line items must use the same currency.", f"{param}[price]")
        currency = price["currency"]
        product = store.get("product", price["product"]) or {"name": price["id"]}
        items.append(objects.checkout_line_item(price, quantity, product["name"]))
    if not items:
        raise missing_param("line_items")
    return items


def _subscription_data(value: Any) -> dict[str, Any]:
    data = as_dict(value, "subscription_data")
    for key in data:
        if key not in ("metadata", "description", "trial_period_days"):
            raise unsupported(f"subscription_data[{key}]")
    out: dict[str, Any] = {"metadata": apply_metadata({}, data.get("metadata", {}))}
    if data.get("description"):
        out["description"] = as_str(data["description"], "subscription_data[description]")
    if "trial_period_days" in data:
        days = as_int(data["trial_period_days"], "subscription_data[trial_period_days]")
        # https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-subscription_data-trial_period_days
        if not 1 <= days <= 730:
            raise invalid(
                "The trial period must be between 1 and 730 days.",
                "subscription_data[trial_period_days]",
            )
        out["trial_period_days"] = days
    return out


@routes.add("/checkout/sessions", "POST")
def create_checkout_session(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(
        params,
        (
            "mode",
            "customer",
            "customer_email",
            "client_reference_id",
            "line_items",
            "success_url",
            "cancel_url",
            "metadata",
            "subscription_data",
            "allow_promotion_codes",
            "locale",
            "payment_method_types",
            "billing_address_collection",
            "expires_at",
            "automatic_tax",
            "customer_update",
            "ui_mode",
        ),
    )
    mode = choice(require(params, "mode"), "mode", ("payment", "setup", "subscription"))
    if mode != "subscription":
        raise invalid("The Stripe stand-in only supports mode=subscription.", "mode")
    if params.get("ui_mode", "hosted_page") != "hosted_page":
        raise unsupported("ui_mode")
    if params.get("customer") and params.get("customer_email"):
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            "customer_email",
        )
    with store.lock:
        customer = None
        if params.get("customer"):
            customer = store.require("customer", params["customer"], "customer")["id"]
        line_items = _line_items(store, require(params, "line_items"))
        now = store.now()
        expires_at = now + SESSION_TTL
        if "expires_at" in params:
            expires_at = as_int(params["expires_at"], "expires_at")
            if not now + SESSION_MIN_TTL <= expires_at <= now + SESSION_TTL:
                raise invalid(
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours "
                    "from Checkout Session creation.",
                    "expires_at",
                )
        session_id = new_id("cs_test_", 58)
        session = objects.checkout_session(
            id=session_id,
            created=now,
            url=f"{store.public_url}/checkout/{session_id}",
            mode=mode,
            currency=line_items[0]["currency"],
            amount_subtotal=sum(item["amount_subtotal"] for item in line_items),
            customer=customer,
            customer_email=as_str(params["customer_email"], "customer_email")
            if params.get("customer_email")
            else None,
            client_reference_id=params.get("client_reference_id") or None,
            success_url=params.get("success_url") or None,
            cancel_url=params.get("cancel_url") or None,
            metadata=apply_metadata({}, params.get("metadata", {})),
            allow_promotion_codes=as_bool(params["allow_promotion_codes"], "allow_promotion_codes")
            if "allow_promotion_codes" in params
            else None,
            locale=params.get("locale") or None,
            expires_at=expires_at,
        )
        store.checkout_data[session_id] = {
            "line_items": line_items,
            "subscription_data": _subscription_data(params.get("subscription_data", {})),
        }
        store.add("checkout.session", session)
        return present(store, session)


@routes.add("/checkout/sessions/<session_id>", "GET")
def get_checkout_session(store: Store, params: dict[str, Any], session_id: str) -> dict[str, Any]:
    return present(store, store.require("checkout.session", session_id))


@routes.add("/checkout/sessions/<session_id>/expire", "POST")
def expire_checkout_session(
    store: Store, params: dict[str, Any], session_id: str
) -> dict[str, Any]:
    check_known(params, ())
    session = store.require("checkout.session", session_id)
    return present(store, billing.expire_session(store, session))


@routes.add("/checkout/sessions/<session_id>/line_items", "GET")
def list_checkout_line_items(
    store: Store, params: dict[str, Any], session_id: str
) -> dict[str, Any]:
    check_known(params, ("limit", "starting_after", "ending_before"))
    store.require("checkout.session", session_id)
    items = store.checkout_data.get(session_id, {}).get("line_items", [])
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    return paginate(store, items, params, url, positional_order(items))


@routes.add("/checkout/sessions", "GET")
def list_checkout_sessions(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, (*LIST_PARAMS, "customer", "status", "subscription", "payment_intent"))
    items = filter_created(store.all("checkout.session"), params.get("created"))
    for name in ("customer", "status", "subscription", "payment_intent"):
        if name in params:
            items = [s for s in items if s[name] == params[name]]
    return paginate(store, items, params, "/v1/checkout/sessions")


# -- payment methods -------------------------------------------------------------------------


@routes.add("/payment_methods/<pm_id>", "GET")
def get_payment_method(store: Store, params: dict[str, Any], pm_id: str) -> dict[str, Any]:
    check_known(params, ("expand",))
    return present(store, store.require("payment_method", pm_id))


@routes.add("/payment_methods", "GET")
def list_payment_methods(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, ("customer", "type", "limit", "starting_after", "ending_before", "expand"))
    items = [
        pm
        for pm in store.all("payment_method")
        if pm["customer"] == params.get("customer") and params.get("type", "card") == pm["type"]
    ]
    return paginate(store, items, params, "/v1/payment_methods")


@routes.add("/customers/<customer_id>/payment_methods", "GET")
def list_customer_payment_methods(
    store: Store, params: dict[str, Any], customer_id: str
) -> dict[str, Any]:
    check_known(params, ("type", "limit", "starting_after", "ending_before", "expand"))
    store.require("customer", customer_id, "customer")
    items = [pm for pm in store.all("payment_method") if pm["customer"] == customer_id]
    return paginate(store, items, params, f"/v1/customers/{customer_id}/payment_methods")


# -- billing portal --------------------------------------------------------------------------


@routes.add("/billing_portal/sessions", "POST")
def create_portal_session(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    check_known(params, ("customer", "return_url", "configuration", "locale", "flow_data"))
    with store.lock:
        customer = store.require("customer", require(params, "customer"), "customer")
        session_id = new_id("bps_")
        session = objects.portal_session(
            id=session_id,
            created=store.now(),
            customer=customer["id"],
            return_url=params.get("return_url") or None,
            url=f"{store.public_url}/portal/{session_id}",
            configuration=params.get("configuration") or store.portal_configuration,
            locale=params.get("locale") or None,
        )
        session["flow"] = _portal_flow(store, customer["id"], params.get("flow_data"))
        store.add("billing_portal.session", session)
        return present(store, session)


FLOW_TYPES = ("payment_method_update", "subscription_cancel", "subscription_update_confirm")


def _portal_flow(store: Store, customer_id: str, value: Any) -> dict[str, Any] | None:
    """``flow_data``: a deep link into one portal page
    (https://docs.stripe.com/customer-management/portal-deep-links), shown as ``flow``."""
    if value in (None, ""):
        return None
    if not isinstance(value, dict) or value.get("type") not in FLOW_TYPES:
        raise invalid(
            f"Invalid flow_data[type]: must be one of {', '.join(FLOW_TYPES)}", "flow_data[type]"
        )
    kind = value["type"]
    after = value.get("after_completion") or {}
    after_type = after.get("type", "portal_homepage")
    flow: dict[str, Any] = {
        "after_completion": {
            "hosted_confirmation": None,
            "redirect": {"return_url": (after.get("redirect") or {}).get("return_url")}
            if after_type == "redirect"
            else None,
            "type": after_type,
        },
        "subscription_cancel": None,
        "subscription_update": None,
        "subscription_update_confirm": None,
        "type": kind,
    }
    if kind == "subscription_cancel":
        details = value.get(kind) or {}
        sub = store.require("subscription", details.get("subscription"), f"flow_data[{kind}]")
        flow[kind] = {"retention": None, "subscription": sub["id"]}
    elif kind == "subscription_update_confirm":
        details = value.get(kind) or {}
        sub = store.require("subscription", details.get("subscription"), f"flow_data[{kind}]")
        if sub["customer"] != customer_id:
            raise invalid("The subscription belongs to another customer.", f"flow_data[{kind}]")
        items = details.get("items")
        items = list(items.values()) if isinstance(items, dict) else list(items or [])
        if not items or not items[0].get("price"):
            raise invalid("Missing flow_data[subscription_update_confirm][items][0][price].")
        store.require("price", items[0]["price"], "price")
        flow[kind] = {
            "discounts": None,
            "items": [{"id": i.get("id"), "price": i["price"], "quantity": 1} for i in items],
            "subscription": sub["id"],
        }
    return flow
