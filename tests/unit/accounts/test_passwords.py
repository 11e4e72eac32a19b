"""Password policy and argon2id parameters."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters

from paywall.accounts.passwords import (
    PasswordHashing,
    PasswordPolicyError,
    check_policy,
    common_passwords,
)
from paywall.config import DEFAULTS


def test_default_hash_is_argon2id_at_owasp_parameters() -> None:
    hashing = PasswordHashing(
        DEFAULTS["ARGON2_TIME_COST"], DEFAULTS["ARGON2_MEMORY_COST"], DEFAULTS["ARGON2_PARALLELISM"]
    )
    stored = hashing.hash("a long passphrase")
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
    assert hashing.verify(stored, "a long passphrase")
    assert not hashing.verify(stored, "a long passphrasE")
    assert not hashing.verify(None, "a long passphrase")


def test_changed_parameters_trigger_a_rehash() -> None:
    old = PasswordHashing(1, 1024, 1).hash("a long passphrase")
    assert PasswordHashing(2, 19456, 1).needs_rehash(old)
    assert not PasswordHashing(1, 1024, 1).needs_rehash(old)


@pytest.mark.parametrize("password", ["short", "password", "Password1", "qwertyuiop", "x" * 1025])
def test_policy_refuses(password: str) -> None:
    with pytest.raises(PasswordPolicyError):
        check_policy(password)


@pytest.mark.parametrize("password", ["correct horse battery", "é" * 8, "x" * 64, "y" * 1024])
def test_policy_accepts(password: str) -> None:
    try:
        check_policy(password)
    except PasswordPolicyError as exc:
        pytest.fail(f"{password[:20]!r} was refused: {exc}")


def test_length_boundaries_are_8_and_1024_characters() -> None:
    """Characters, not bytes: eight two-byte characters are enough, seven are not."""
    check_policy("é" * 8)
    check_policy("y" * 1024)
    for too_short_or_long in ("é" * 7, "y" * 1025):
        with pytest.raises(PasswordPolicyError):
            check_policy(too_short_or_long)


def test_bundled_list_is_loaded() -> None:
    assert len(common_passwords()) > 19_000
