"""Offline check, as a frontend server would do it before rendering a premium article.

Needs PyJWT (``pip install 'pyjwt[crypto]'``) and paywall/entitlements/verifier.py (copy that one
file into your frontend). The keys come from the service's JWKS, fetched and cached 5 minutes.
Run against `make run`:

    TOKEN=$(curl -s -X POST -H "Authorization: Bearer $SESSION" \
            http://127.0.0.1:8000/api/v1/entitlements/token | jq -r .token)
    python examples/offline_check.py "$TOKEN" "$SESSION" premium
"""

from __future__ import annotations

import os
import sys

from paywall.entitlements.verifier import RemoteKeys, TokenError, can_read


def decide(
    token: str | None, session: str | None, keys: RemoteKeys, access_level: str
) -> tuple[bool, str]:
    """(may read, why): the whole integration, in one function. ``session`` is the reader's
    paywall session cookie: the token is refused unless it was issued for that session."""
    claims = None
    if token:
        try:
            claims = keys.verify(token, session=session)
        except TokenError as exc:
            return can_read(None, access_level), f"token refused: {exc.reason}"
    allowed = can_read(claims, access_level)
    return allowed, "entitled" if allowed else "not entitled"


if __name__ == "__main__":
    token = sys.argv[1] if len(sys.argv) > 1 else None
    session = sys.argv[2] if len(sys.argv) > 2 else None
    level = sys.argv[3] if len(sys.argv) > 3 else "premium"
    service = os.environ.get("PAYWALL_URL", "http://127.0.0.1:8000")
    allowed, why = decide(token, session, RemoteKeys(service + "/.well-known/jwks.json"), level)
    print(f"{'SEND' if allowed else 'TEASER ONLY'}: {why}")
    sys.exit(0 if allowed else 1)
