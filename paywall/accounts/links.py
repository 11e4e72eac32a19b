"""Signed, expiring, single-use links for email verification and password reset.

itsdangerous with HMAC-SHA256 (not its SHA-1 default) and one salt per purpose, so a
verification token can never be used as a reset token. Every load passes ``max_age``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from paywall.errors import PaywallError

VERIFY_EMAIL = "verify-email"
RESET_PASSWORD = "reset-password"  # noqa: S105 - a purpose name, not a password
CHANGE_EMAIL = "change-email"


class LinkTokenError(PaywallError):
    """Base for refused link tokens."""

    code, status = "token_invalid", 400


class LinkTokenExpired(LinkTokenError):
    code = "token_expired"


class LinkTokenInvalid(LinkTokenError):
    code = "token_invalid"


class LinkTokenUsed(LinkTokenError):
    code = "token_used"


class LinkSigner:
    """Signs and loads link tokens for one purpose."""

    def __init__(self, secret_key: str, purpose: str, max_age: int) -> None:
        self.purpose = purpose
        self.max_age = max_age
        self.serializer = URLSafeTimedSerializer(
            secret_key,
            salt=f"paywall.{purpose}",
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def dumps(self, payload: dict[str, Any]) -> str:
        return str(self.serializer.dumps(payload))

    def canonical(self, token: str) -> str:
        """What single use is checked on: the signed payload and its time, not the string, so
        the same link spelled differently (``=`` appended, padding) is the same link."""
        data, signed_at = self.serializer.loads(token, max_age=self.max_age, return_timestamp=True)
        body = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return f"{self.purpose}:{int(signed_at.timestamp())}:{body}"

    def loads(self, token: str) -> dict[str, Any]:
        try:
            data = self.serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as exc:
            raise LinkTokenExpired("This link has expired.") from exc
        except BadSignature as exc:
            raise LinkTokenInvalid("This link is not valid.") from exc
        if not isinstance(data, dict):
            raise LinkTokenInvalid("This link is not valid.")
        return data


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_binding(password_hash: str, secret_key: str) -> str:
    """What a reset link carries to die when the password changes: a keyed digest of the
    stored hash, which tells nothing about the hash itself."""
    return hmac.new(secret_key.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:32]
