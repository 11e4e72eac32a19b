"""The README's offline example works as documented."""

from __future__ import annotations

import time

from examples.offline_check import decide
from paywall.entitlements.verifier import AUDIENCE, serializer

KEYS = ["e" * 40]


def token(features: list[str], exp_offset: int = 300) -> str:
    now = int(time.time())
    claims = {
        "sub": "a",
        "sid": "s",
        "features": features,
        "iat": now,
        "exp": now + exp_offset,
        "aud": AUDIENCE,
    }
    return str(serializer(KEYS).dumps(claims))


def test_offline_example_decides_like_the_docs_say() -> None:
    assert decide(token(["premium_content"]), KEYS, "premium") == (True, "entitled")
    assert decide(token([]), KEYS, "premium") == (False, "not entitled")
    assert decide(token([]), KEYS, "registered") == (True, "entitled")
    assert decide(None, KEYS, "free") == (True, "entitled")
    assert decide(token(["premium_content"], -3600), KEYS, "premium") == (
        False,
        "token refused: expired",
    )
    assert decide(token(["premium_content"]), ["other" * 10], "premium")[1] == (
        "token refused: bad_signature"
    )
