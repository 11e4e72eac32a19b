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
    check_policy(password)


def test_bundled_list_is_loaded() -> None:
    assert len(common_passwords()) > 19_000
