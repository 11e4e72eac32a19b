"""Stripe's form encoding: ``metadata[key]=v``, ``line_items[0][price]=p``, ``expand[]=x``.

``parse_form`` turns the flat pairs into nested dicts/lists; the ``as_*`` functions coerce a
value the way Stripe does and raise Stripe's 400 errors when it cannot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import invalid, missing_param, unknown_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INT = re.compile(r"^-?\d+$")

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode bracket-notation pairs into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))] if match else [key]
        node = root
        for depth, segment in enumerate(path):
            if segment == "":
                segment = str(len(node))
            if depth == len(path) - 1:
                node[segment] = value
                break
            child = node.get(segment)
            if not isinstance(child, dict):
                child = {}
                node[segment] = child
            node = child
    parsed: dict[str, Any] = _listify(root, inside_metadata=False)
    return parsed


def _listify(node: Any, *, inside_metadata: bool) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {
        key: _listify(value, inside_metadata=inside_metadata or key == "metadata")
        for key, value in node.items()
    }
    if converted and not inside_metadata and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def check_known(params: Mapping[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    """Reject parameters Stripe would not recognise (``parameter_unknown``)."""
    known = set(allowed) | {"expand"}
    for name in params:
        if name not in known:
            raise unknown_param(f"{prefix}[{name}]" if prefix else name)


def require(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise missing_param(name)
    return value


def as_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {_show(value)}", param)
    return value


def as_int(value: Any, param: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not _INT.match(value.strip()):
        raise invalid(f"Invalid integer: {_show(value)}", param)
    return int(value)


def as_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0"):
        return False
    raise invalid(f"Invalid boolean: {_show(value)}", param)


def as_list(value: Any, param: str) -> list[Any]:
    if isinstance(value, list):
        return value
    raise invalid(f"Invalid array: {param} must be an array.", param)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise invalid(f"Invalid object: {param} must be an object.", param)


def as_str_list(value: Any, param: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [as_str(item, param) for item in as_list(value, param)]


def choice(value: Any, param: str, options: Iterable[str]) -> str:
    text = as_str(value, param)
    allowed = list(options)
    if text not in allowed:
        raise invalid(
            f"Invalid {param}: must be one of {', '.join(allowed)}", param, "parameter_invalid"
        )
    return text


def apply_metadata(
    existing: Mapping[str, str], value: Any, param: str = "metadata"
) -> dict[str, Any]:
    """Stripe's metadata semantics: ``""`` clears all, a key set to ``""`` is removed."""
    if value == "":
        return {}
    updates = as_dict(value, param)
    merged = dict(existing)
    for key, item in updates.items():
        if not isinstance(item, str):
            raise invalid(f"Invalid value for metadata key {key}: must be a string.", param)
        if len(key) > METADATA_KEY_MAX:
            raise invalid(
                f"Metadata keys can have up to {METADATA_KEY_MAX} characters; "
                f"`{key}` has {len(key)}.",
                f"{param}[{key}]",
            )
        if len(item) > METADATA_VALUE_MAX:
            raise invalid(
                f"Metadata values can have up to {METADATA_VALUE_MAX} characters, "
                f"but you passed in a value that is {len(item)} characters.",
                f"{param}[{key}]",
            )
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > METADATA_MAX_KEYS:
        raise invalid(f"You can have up to {METADATA_MAX_KEYS} metadata keys.", param)
    return merged


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
