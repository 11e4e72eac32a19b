"""The README's offline example works as documented, with keys from a JWKS URL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from werkzeug.serving import make_server

from examples.offline_check import decide
from paywall.entitlements.keys import generate_pem, signing_keys
from paywall.entitlements.verifier import AUDIENCE, RemoteKeys, session_hash

KEYS = signing_keys([generate_pem()])
SESSION = "reader-session"


def token(features: list[str], exp_offset: int = 300, keys: Any = KEYS) -> str:
    now = int(time.time())
    claims = {
        "sub": "a",
        "sid": "s",
        "features": features,
        "iat": now,
        "exp": now + exp_offset,
        "aud": AUDIENCE,
        "cnf": {"sth": session_hash(SESSION)},
    }
    return str(keys.sign(claims))


@pytest.fixture
def jwks_url() -> Any:
    from flask import Flask, jsonify

    app = Flask("jwks")
    app.get("/.well-known/jwks.json")(lambda: jsonify(KEYS.jwks()))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


def test_offline_example_decides_like_the_docs_say(jwks_url: str) -> None:
    keys = RemoteKeys(jwks_url)
    assert decide(token(["premium_content"]), SESSION, keys, "premium") == (True, "entitled")
    assert decide(token([]), SESSION, keys, "premium") == (False, "not entitled")
    assert decide(token([]), SESSION, keys, "registered") == (True, "entitled")
    assert decide(None, None, keys, "free") == (True, "entitled")
    assert decide(token(["premium_content"], -3600), SESSION, keys, "premium") == (
        False,
        "token refused: expired",
    )
    assert decide(token(["premium_content"]), "other", keys, "premium") == (
        False,
        "token refused: wrong_session",
    )
    other = signing_keys([generate_pem()])
    assert decide(token(["premium_content"], keys=other), SESSION, keys, "premium")[1] == (
        "token refused: bad_signature"
    )


def test_unreachable_jwks_refuses_instead_of_crashing() -> None:
    keys = RemoteKeys("http://127.0.0.1:9/.well-known/jwks.json", timeout=0.5)
    assert decide(token(["premium_content"]), SESSION, keys, "premium") == (
        False,
        "token refused: keys_unavailable",
    )
