"""Property-based: the fast verifier accepts and refuses exactly what itsdangerous does, and no
input crashes it."""

from __future__ import annotations

import contextlib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import BadData

from paywall.entitlements.verifier import AUDIENCE, TokenError, Verifier, serializer

KEYS = ["k" * 40, "j" * 40]
VERIFIER = Verifier(KEYS)
REFERENCE = serializer(KEYS)
OTHER = serializer(["z" * 40])

claims = st.fixed_dictionaries(
    {
        "sub": st.text(max_size=20),
        "sid": st.text(max_size=20),
        "features": st.lists(st.sampled_from(["premium_content", "notifications", "x"])),
        "iat": st.integers(0, 2**33),
        "exp": st.integers(0, 2**33),
        "aud": st.sampled_from([AUDIENCE, "other"]),
        "pad": st.text(max_size=400),  # long payloads make itsdangerous compress them
    }
)


def reference(token: str) -> tuple[bool, object]:
    try:
        return True, REFERENCE.loads(token)
    except BadData:
        return False, None


def fast(token: str) -> tuple[bool, object]:
    try:
        return True, VERIFIER.load(token)
    except TokenError:
        return False, None


def mutate(token: str, data: st.DataObject) -> str:
    if not token:
        return token
    i = data.draw(st.integers(0, len(token) - 1))
    op = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate", "swap_sig"]))
    if op == "replace":
        return token[:i] + data.draw(st.characters(codec="ascii")) + token[i + 1 :]
    if op == "delete":
        return token[:i] + token[i + 1 :]
    if op == "insert":
        return token[:i] + data.draw(st.sampled_from(list("A.=-_x\x00é"))) + token[i:]
    if op == "truncate":
        return token[:i]
    body = token.rsplit(".", 1)[0]
    return body + "." + OTHER.dumps({"x": 1}).rsplit(".", 1)[1]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(claims, st.sampled_from([0, 1]))
def test_signed_tokens_agree(payload: dict, key_index: int) -> None:
    token = serializer([KEYS[key_index]]).dumps(payload)
    assert fast(token) == reference(token) == (True, payload)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(claims, st.data())
def test_tampered_tokens_agree(payload: dict, data: st.DataObject) -> None:
    token = mutate(REFERENCE.dumps(payload), data)
    assert fast(token) == reference(token)


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_random_text_never_crashes_and_never_verifies(text: str) -> None:
    accepted, _ = fast(text)
    assert not accepted
    with contextlib.suppress(TokenError):
        VERIFIER.verify(text, now=time.time())


@settings(max_examples=200)
@given(claims)
def test_other_keys_never_verify(payload: dict) -> None:
    assert fast(OTHER.dumps(payload)) == (False, None)
