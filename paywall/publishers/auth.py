"""Publisher API keys: ``Authorization: Bearer <key>``, one of ``PAYWALL_PUBLISHER_API_KEYS``.

Keys are compared as SHA-256 digests with :func:`hmac.compare_digest`, every configured key
each time, so neither the answer's timing nor an early exit tells how much of a key was right.
Readers' session values are never accepted here: a reader gets the same 401 as a stranger.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from flask import current_app, g, request

from paywall.errors import PaywallError

F = TypeVar("F", bound=Callable[..., Any])

#: Shortest key accepted outside demo mode (32 characters of a random token).
MIN_KEY_LENGTH = 32


class PublisherKeyRequired(PaywallError):
    code, status = "publisher_key_required", 401
    message = "This call needs a publisher API key: Authorization: Bearer <key>."


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def matching_key_index(presented: str | None, keys: Sequence[str]) -> int | None:
    """The index of the configured key ``presented`` equals, or None; constant time per key."""
    if not presented:
        return None
    candidate = _digest(presented)
    found: int | None = None
    for index, key in enumerate(keys):
        if hmac.compare_digest(candidate, _digest(key)) and found is None:
            found = index
    return found


def presented_publisher_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def authenticate_publisher() -> int:
    """Check the request's publisher key; returns its index in the setting (0 = newest).

    Raises :class:`PublisherKeyRequired` (401) when the key is missing or unknown, and when the
    service has no publisher keys configured at all.
    """
    index = matching_key_index(presented_publisher_key(), current_app.config["PUBLISHER_API_KEYS"])
    if index is None:
        raise PublisherKeyRequired()
    g.publisher_key_index = index
    return index


def publisher_required(view: F) -> F:
    """Decorate a view that only the publisher's systems may call."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        authenticate_publisher()
        return view(*args, **kwargs)

    return cast(F, wrapped)


#: For ``@blp.doc(security=PUBLISHER_SECURITY)`` on operations that take a publisher key.
PUBLISHER_SECURITY: list[dict[str, list[str]]] = [{"publisherKey": []}]


def init_app(app: Any) -> None:
    """Describe the publisher key in the OpenAPI document."""
    from paywall.extensions import api

    api.spec.components.security_scheme(
        "publisherKey",
        {"type": "http", "scheme": "bearer", "description": "one of PAYWALL_PUBLISHER_API_KEYS"},
    )
