"""Turning stored objects into API answers: rendering, ``expand``, list pagination, events."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from . import objects
from .errors import invalid, no_such
from .params import as_int, as_str_list
from .store import LABELS, Store, current_request, kind_of, new_id

MAX_EXPAND_DEPTH = 4
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def present(store: Store, obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a stored object as the API shows it right now."""
    with store.lock:
        if obj.get("object") == "customer" and obj["id"] in store.deleted:
            return objects.deleted_customer(obj["id"])
        out = copy.deepcopy(obj)
        if out.get("object") == "subscription":
            for item in out["items"]["data"]:
                price_obj = store.get("price", item["price"])
                if price_obj is not None:
                    item["price"] = copy.deepcopy(price_obj)
                    item["plan"] = objects.plan(price_obj)
        return out


# -- expand ----------------------------------------------------------------------------------


def expand(store: Store, obj: dict[str, Any], paths: Any) -> dict[str, Any]:
    """Apply Stripe's ``expand[]`` to a rendered object (or list object) in place."""
    if paths in (None, ""):
        return obj
    for path in as_str_list(paths, "expand"):
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH:
            raise invalid(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {path}",
                "expand",
            )
        _expand(store, obj, parts, path, top=obj)
    return obj


def _expand(store: Store, node: Any, parts: list[str], path: str, top: dict[str, Any]) -> None:
    if isinstance(node, list):
        for element in node:
            _expand(store, element, parts, path, top)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head not in node:
        included = _includable(store, node, head)
        if included is None:
            hint = ""
            if top.get("object") == "list" and node is top:
                hint = f" You may want to try expanding 'data.{path}' instead."
            raise invalid(f"This property cannot be expanded ({path}).{hint}", "expand")
        node[head] = included
    value = node[head]
    if isinstance(value, str):
        value = node[head] = _resolve(store, value)
    elif isinstance(value, list) and not rest:
        node[head] = [_resolve(store, v) if isinstance(v, str) else v for v in value]
        return
    if rest:
        _expand(store, value, rest, path, top)


def _resolve(store: Store, object_id: str) -> Any:
    found = store.find(object_id)
    return present(store, found[1]) if found else object_id


def _includable(store: Store, node: dict[str, Any], field: str) -> dict[str, Any] | None:
    """Fields Stripe only returns when expanded (``line_items``, ``payments``)."""
    kind, object_id = node.get("object"), str(node.get("id"))
    if kind == "checkout.session" and field == "line_items":
        items = store.checkout_data.get(object_id, {}).get("line_items", [])
        url = f"/v1/checkout/sessions/{object_id}/line_items"
        return objects.list_object(copy.deepcopy(items), url)
    if kind == "invoice" and field == "payments":
        payments = [
            present(store, p) for p in store.all("invoice_payment") if p["invoice"] == object_id
        ]
        return objects.list_object(payments, f"/v1/invoices/{object_id}/payments")
    return None


# -- lists -----------------------------------------------------------------------------------


def paginate(
    store: Store,
    items: list[dict[str, Any]],
    params: Mapping[str, Any],
    url: str,
    order: Callable[[str], int | None] | None = None,
) -> dict[str, Any]:
    """Stripe's cursor pagination over ``items`` (already newest first)."""
    limit = as_int(params.get("limit", DEFAULT_LIMIT), "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(
            f"Invalid integer: {limit}. This value must be between 1 and {MAX_LIMIT}.", "limit"
        )
    if order is None:
        order = store.order_key
    starting_after, ending_before = params.get("starting_after"), params.get("ending_before")
    if starting_after:
        key = _cursor(starting_after, order, "starting_after")
        remaining = [obj for obj in items if (order(obj["id"]) or 0) < key]
        page, has_more = remaining[:limit], len(remaining) > limit
    elif ending_before:
        key = _cursor(ending_before, order, "ending_before")
        newer = [obj for obj in items if (order(obj["id"]) or 0) > key]
        page, has_more = newer[-limit:], len(newer) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    data = [present(store, obj) for obj in page]
    return objects.list_object(data, url, has_more)


LIST_PARAMS = ("limit", "starting_after", "ending_before", "created")


def filter_created(items: list[dict[str, Any]], value: Any) -> list[dict[str, Any]]:
    """Stripe's ``created`` list filter: an exact timestamp or ``created[gte]=...`` etc."""
    if value is None:
        return items
    if not isinstance(value, dict):
        exact = as_int(value, "created")
        return [obj for obj in items if obj["created"] == exact]
    bounds = {
        op: as_int(value[op], f"created[{op}]") for op in ("gt", "gte", "lt", "lte") if op in value
    }
    checks = {
        "gt": lambda created, bound: created > bound,
        "gte": lambda created, bound: created >= bound,
        "lt": lambda created, bound: created < bound,
        "lte": lambda created, bound: created <= bound,
    }
    return [
        obj
        for obj in items
        if all(checks[op](obj["created"], bound) for op, bound in bounds.items())
    ]


def _cursor(value: Any, order: Callable[[str], int | None], param: str) -> int:
    key = order(value) if isinstance(value, str) else None
    if key is None:
        kind = kind_of(value) if isinstance(value, str) else None
        raise no_such(LABELS.get(kind or "", kind or "object"), str(value), param)
    return key


def positional_order(items: list[dict[str, Any]]) -> Callable[[str], int | None]:
    """Cursor keys for an embedded list (e.g. invoice lines) given newest first."""
    ranks = {obj["id"]: len(items) - index for index, obj in enumerate(items)}
    return ranks.get


# -- events ----------------------------------------------------------------------------------


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Stripe's ``previous_attributes``: old values of what changed (nested dicts recursed)."""
    changed: dict[str, Any] = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed[key] = diff(old, new)
        else:
            changed[key] = copy.deepcopy(old)
    for key in after:
        if key not in before:
            changed[key] = None
    return changed


def emit(
    store: Store,
    type: str,
    obj: dict[str, Any],
    before: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record an event whose ``data.object`` is a snapshot of ``obj`` now.

    ``before`` (a ``present`` snapshot taken before the change) adds ``previous_attributes``.
    """
    with store.lock:
        snapshot = present(store, obj)
        previous = diff(before, snapshot) if before is not None else None
        request_id, idempotency_key = current_request.get()
        event = objects.event(
            id=new_id("evt_"),
            created=store.now(),
            type=type,
            api_version=store.api_version,
            data_object=snapshot,
            previous_attributes=previous,
            request_id=request_id,
            idempotency_key=idempotency_key,
            pending_webhooks=0,
        )
        store.record_event(event)
        return event
