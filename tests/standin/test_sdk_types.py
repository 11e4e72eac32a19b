"""Every object the stand-in returns, checked against the installed stripe SDK's generated
types (the SDK pyproject allows is generated for the pinned API version): each field the type
requires is present, null only where the type allows it, of the right primitive type, and
nested objects, lists and expandable fields are checked the same way, recursively.

fixtures.json alone cannot catch drift: it is one example of each object, not the contract.
"""

from __future__ import annotations

import importlib
import inspect
from types import NoneType, UnionType
from typing import Any, ForwardRef, Literal, Union, get_args, get_origin

import stripe
from stripe._object_classes import OBJECT_CLASSES

from stripe_standin import StandIn
from tests.standin.conftest import Catalog, Subscribed, pay, start_checkout

RESOURCES: dict[str, type] = {}
for _object, (_module, _name) in OBJECT_CLASSES.items():
    RESOURCES[_object] = getattr(importlib.import_module(_module), _name)
BY_NAME = {cls.__name__: cls for cls in RESOURCES.values()}


def resolve(tp: Any) -> Any:
    name = tp.__forward_arg__ if isinstance(tp, ForwardRef) else tp
    if isinstance(name, str):  # stripe.Plan, not stripe.reserve.Plan
        found = getattr(stripe, name, None)
        return found if inspect.isclass(found) else BY_NAME.get(name, Any)
    return tp


def fields_of(cls: type) -> dict[str, Any]:
    own = cls.__dict__.get("__annotations__", {})
    return {
        name: tp
        for name, tp in own.items()
        if not name.startswith("_") and name != "OBJECT_NAME" and get_origin(tp) is not type
    }


def check(value: Any, tp: Any, path: str, errors: list[str]) -> None:
    tp = resolve(tp)
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return
    if origin in (Union, UnionType):
        if value is None:
            if NoneType not in args:
                errors.append(f"{path}: null, not nullable in the SDK")
            return
        alternatives = [a for a in args if a is not NoneType]
        if any(get_origin(a) is Literal for a in alternatives):
            # The SDK adds ``str`` beside each enum for values newer than itself; the
            # stand-in must use the values it knows.
            alternatives = [a for a in alternatives if a is not str]
        for alternative in alternatives:
            attempt: list[str] = []
            check(value, alternative, path, attempt)
            if not attempt:
                return
        errors.append(f"{path}: {value!r:.80} matches none of {tp}")
        return
    if value is None:
        errors.append(f"{path}: null, not nullable in the SDK ({tp})")
        return
    if origin is Literal:
        if value not in args:
            errors.append(f"{path}: {value!r} not one of {args}")
        return
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: {type(value).__name__}, expected a list")
            return
        for i, item in enumerate(value):
            check(item, args[0], f"{path}[{i}]", errors)
        return
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: {type(value).__name__}, expected a map")
            return
        for key, item in value.items():
            check(item, args[1], f"{path}.{key}", errors)
        return
    if inspect.isclass(origin) and issubclass(origin, stripe.ListObject):
        if not isinstance(value, dict) or value.get("object") != "list":
            errors.append(f"{path}: expected a list object")
            return
        for i, item in enumerate(value.get("data") or []):
            check(item, args[0] if args else Any, f"{path}.data[{i}]", errors)
        return
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: {value!r:.40} is not a boolean")
        return
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: {value!r:.40} is not an integer")
        return
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"{path}: {value!r:.40} is not a number")
        return
    if tp is str:
        if not isinstance(value, str):
            errors.append(f"{path}: {value!r:.40} is not a string")
        return
    if inspect.isclass(tp) and issubclass(tp, stripe.StripeObject):
        check_object(value, tp, path, errors)


def check_object(value: Any, cls: type, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: {value!r:.40} is not an object ({cls.__qualname__})")
        return
    fields = fields_of(cls)
    for name in value.keys() - fields.keys() - {"object", "deleted"}:
        # A field the pinned version no longer has (invoice.subscription, ...).
        errors.append(f"{path}.{name}: not a field of {cls.__qualname__} in this version")
    for name, tp in fields.items():
        if name not in value:
            if NoneType not in get_args(resolve(tp)):
                errors.append(f"{path}.{name}: missing (required by {cls.__qualname__})")
            continue
        check(value[name], tp, f"{path}.{name}", errors)


def validate(obj: dict[str, Any], path: str) -> list[str]:
    cls = RESOURCES.get(obj.get("object", ""))
    assert cls is not None, f"{path}: unknown object type {obj.get('object')!r}"
    errors: list[str] = []
    check_object(obj, cls, path, errors)
    return errors


def test_the_checker_catches_drift() -> None:
    """The checker itself: the three kinds of drift it must see."""
    fixture = {"id": "sub_1", "object": "subscription"}
    assert any("missing" in e for e in validate(fixture, "sub"))
    session: dict[str, Any] = {"object": "checkout.session", "ui_mode": "hosted"}
    assert any("ui_mode" in e for e in validate(session, "cs"))
    charge = {"object": "charge", "amount": "900", "refunded": None}
    errors = validate(charge, "ch")
    assert any("amount" in e and "integer" in e for e in errors)
    assert any("refunded" in e and "null" in e for e in errors)


def test_every_object_the_standin_returns_matches_the_sdk_types(
    standin: StandIn, stripe_client: stripe.StripeClient, catalog: Catalog, subscribed: Subscribed
) -> None:
    sub_id = subscribed.subscription.id
    standin.renew(sub_id)
    standin.fail_renewal(sub_id)
    standin.renew(sub_id)
    paid = [c for c in standin.objects("charge") if c["status"] == "succeeded"]
    refund = stripe_client.v1.refunds.create(params={"charge": paid[0]["id"], "amount": 100})
    standin.fail_refund(refund.id, "failed")
    dispute = standin.dispute(paid[1]["id"])
    standin.close_dispute(dispute["id"], "won")
    stripe_client.v1.billing_portal.sessions.create(
        params={"customer": subscribed.customer.id, "return_url": "https://x.test/"}
    )
    stripe_client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
    # Offers: a promotion code on Checkout, a trial, and both ending.
    coupon = stripe_client.v1.coupons.create(
        params={"amount_off": 300, "currency": "eur", "duration": "repeating",
                "duration_in_months": 1, "name": "Spring"}
    )  # fmt: skip
    stripe_client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SPRING"}
    )
    with_code = start_checkout(stripe_client, catalog.yearly.id, allow_promotion_codes=True)
    assert pay(with_code.url, promotion_code="SPRING").status_code == 303
    trial = start_checkout(
        stripe_client, catalog.premium.id, subscription_data={"trial_period_days": 3}
    )
    assert pay(trial.url).status_code == 303
    standin.advance_clock(4 * 86400, renew=True)
    # What the API answers, object by object (the list endpoints render the same objects).
    errors: list[str] = []
    kinds = sorted({kind for kind in standin.state.objects})
    seen = 0
    for kind in kinds:
        for obj in standin.objects(kind):
            errors += validate(obj, f"{kind}:{obj['id']}")
            seen += 1
    for event in standin.events:
        errors += validate(event["data"]["object"], f"{event['type']}:{event['id']}.data.object")
    assert seen > 20 and {"subscription", "invoice", "charge", "dispute", "refund"} <= set(kinds)
    assert {"coupon", "promotion_code", "discount"} <= set(kinds)
    assert not errors, "\n".join(errors[:60]) + f"\n({len(errors)} in all)"
