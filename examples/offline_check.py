"""Offline check, as a frontend server would do it before rendering a premium article.

Needs only itsdangerous and paywall/entitlements/verifier.py (copy that one file into your
frontend). Run against `make run`:

    TOKEN=$(curl -s -X POST -H "Authorization: Bearer $SESSION" \
            http://127.0.0.1:8000/api/v1/entitlements/token | jq -r .token)
    PAYWALL_ENTITLEMENT_KEYS=<the service's keys> python examples/offline_check.py "$TOKEN" premium
"""

from __future__ import annotations

import os
import sys

from paywall.entitlements.verifier import TokenError, can_read, verify


def decide(token: str | None, keys: list[str], access_level: str) -> tuple[bool, str]:
    """(may read, why): the whole integration, in one function."""
    claims = None
    if token:
        try:
            claims = verify(token, keys)
        except TokenError as exc:
            return can_read(None, access_level), f"token refused: {exc.reason}"
    allowed = can_read(claims, access_level)
    return allowed, "entitled" if allowed else "not entitled"


if __name__ == "__main__":
    token = sys.argv[1] if len(sys.argv) > 1 else None
    level = sys.argv[2] if len(sys.argv) > 2 else "premium"
    keys = [k for k in os.environ.get("PAYWALL_ENTITLEMENT_KEYS", "").split(",") if k]
    allowed, why = decide(token, keys, level)
    print(f"{'SEND' if allowed else 'TEASER ONLY'}: {why}")
    sys.exit(0 if allowed else 1)
