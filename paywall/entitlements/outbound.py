"""Outbound webhooks: each revocation goes to ``OUTBOUND_WEBHOOK_URLS`` as ``session.ended`` or
``entitlement.changed``, signed per Standard Webhooks (https://www.standardwebhooks.com/):
``webhook-id`` (stable across retries: receivers dedupe on it), ``webhook-timestamp`` (this
attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` with ``OUTBOUND_WEBHOOK_SECRET``,
a ``whsec_<base64>`` secret). One durable job per revocation and URL (paywall.queue), recorded in
the revocation's transaction and retried on ``OUTBOUND_WEBHOOK_RETRY_SCHEDULE``: delivered at
least once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import current_app

from paywall.types import DbSession

if TYPE_CHECKING:
    from paywall.entitlements.revocations import Revocation

TASK = "entitlements.deliver_webhook"
TIMEOUT = 10.0


def message(row: Revocation) -> tuple[str, dict[str, Any]]:
    """The webhook id and body for a revocation."""
    from paywall.entitlements.revocations import _entry

    entry = _entry(row)
    msg_id = f"msg_rev_{row.id}_{int(row.created_at.timestamp())}"
    payload = {
        "type": entry.event,
        "timestamp": row.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": entry.public(),
    }
    return msg_id, payload


def defer_delivery(session: DbSession, row: Revocation) -> None:
    """One job per configured URL, in ``session``'s transaction."""
    from paywall.queue import defer

    urls = current_app.config.get("OUTBOUND_WEBHOOK_URLS") or []
    if not urls:
        return
    msg_id, payload = message(row)
    for url in urls:
        defer(TASK, msg_id, url, payload, session=session)


def signed_request(
    secret: str, msg_id: str, payload: dict[str, Any], now: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery attempt (signed with this attempt's time)."""
    from standardwebhooks.webhooks import Webhook

    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    stamp = (now or datetime.now(UTC)).replace(microsecond=0)
    signature = Webhook(secret).sign(msg_id, stamp, body)
    return body.encode(), {
        "Content-Type": "application/json",
        "User-Agent": "paywall-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx: the job is retried on the schedule."""


def deliver(secret: str, msg_id: str, url: str, payload: dict[str, Any]) -> int:
    """POST one signed delivery; returns the status, raises ``DeliveryFailed`` unless 2xx."""
    import requests

    body, headers = signed_request(secret, msg_id, payload)
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= answer.status_code < 300:
        raise DeliveryFailed(f"HTTP {answer.status_code}")
    return answer.status_code
