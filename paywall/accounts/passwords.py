"""Password policy and hashing (argon2id), and email normalisation.

Policy after NIST SP 800-63B and OWASP ASVS 5.0 V6.2: at least 8 characters, at least 64 allowed
(we allow 1,024, a bound on hashing cost), never truncated, no composition rules, common
passwords refused.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email

MIN_LENGTH = 8
MAX_LENGTH = 1024


class PasswordPolicyError(ValueError):
    """The password breaks the policy; the message says how."""


@cache
def common_passwords() -> frozenset[str]:
    data = resources.files("paywall.accounts").joinpath("data/common-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def check_policy(password: str, email: str | None = None) -> None:
    """Raise ``PasswordPolicyError`` unless ``password`` meets the policy."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"Use at most {MAX_LENGTH} characters.")
    if password.lower() in common_passwords():
        raise PasswordPolicyError("This password is too common. Choose another.")
    if email and password.lower() == email.lower():
        raise PasswordPolicyError("Do not use your email address as your password.")


def normalise_email(raw: str) -> str:
    """Syntax-check ``raw`` and return its normalised form; ``ValueError`` if malformed."""
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return info.normalized.lower()


def email_hash(raw: str, secret_key: str) -> str:
    """A keyed digest of an address (HMAC-SHA256 under a key derived from the secret key):
    stable enough to correlate logs and rate limits, useless to a dictionary without the key.
    Normalised as the account lookup does, so Unicode variants of one address are one value."""
    try:
        email = normalise_email(raw.strip())
    except ValueError:
        email = raw.strip().casefold()
    key = hmac.new(secret_key.encode(), b"paywall.email-hash", hashlib.sha256).digest()
    return hmac.new(key, email.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


class PasswordHashing:
    """argon2id with the configured parameters; tells when a stored hash needs upgrading."""

    def __init__(self, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        # A fixed hash to verify against when the account does not exist, so an unknown
        # address costs the same time as a wrong password.
        self._dummy = self.hasher.hash("not-a-real-password-just-for-timing")

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)
