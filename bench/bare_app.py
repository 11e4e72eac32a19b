"""The baseline: a bare Flask app under the same gunicorn configuration as the service.

``gunicorn bench.bare_app:app``. Its endpoints do what any Flask endpoint must (route, read the
header or body, serialise a JSON response of about the service's size) and nothing else.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)
_conn: list[Any] = []  # one psycopg connection per worker process, opened on first use

# About the size of the service's token response (a premium reader's token and entitlements).
_TOKEN = "x" * 300


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@app.post("/token")
def token():  # type: ignore[no-untyped-def]
    auth = request.headers.get("Authorization", "")
    return (
        jsonify(
            token=_TOKEN,
            expires_at="2030-01-01T00:00:00+00:00",
            entitlements={
                "plan": "premium_monthly",
                "features": ["premium_content"],
                "max_devices": 5,
                "bearer": len(auth),
            },
        ),
        200,
        {"Cache-Control": "no-store"},
    )


@app.get("/check")
def check():  # type: ignore[no-untyped-def]
    """The edge check's counterpart: read the headers, answer 204 (what nginx needs)."""
    token = request.headers.get("X-Paywall-Token", "")
    return "", 204 if token else 401, {"Cache-Control": "no-store"}


@app.post("/token-db")
def token_db():  # type: ignore[no-untyped-def]
    """The floor for any endpoint that must find the session in PostgreSQL: the bare endpoint
    plus one indexed SELECT by token digest (psycopg, autocommit, no ORM, no pool)."""
    import psycopg

    if not _conn:
        _conn.append(psycopg.connect(os.environ["BENCH_DATABASE_URL"], autocommit=True))
    auth = request.headers.get("Authorization", "")
    raw = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    row = (
        _conn[0]
        .execute(
            "SELECT id, account_id, expires_at, last_seen_at, ended_at FROM device_sessions"
            " WHERE token_digest = %s",
            (hashlib.sha256(raw.encode()).hexdigest(),),
        )
        .fetchone()
    )
    if row is None:
        return jsonify(error={"code": "unauthorized"}), 401
    return (
        jsonify(
            token=_TOKEN,
            expires_at="2030-01-01T00:00:00+00:00",
            entitlements={
                "plan": "premium_monthly",
                "features": ["premium_content"],
                "max_devices": 5,
                "session": row[0],
            },
        ),
        200,
        {"Cache-Control": "no-store"},
    )


@app.post("/login")
def login():  # type: ignore[no-untyped-def]
    body = request.get_json(silent=True) or {}
    return jsonify(
        id="x" * 32, device_name="Device", token="y" * 43, email=str(body.get("email", ""))
    ), 201


@app.post("/webhook")
def webhook():  # type: ignore[no-untyped-def]
    payload = request.get_data(cache=False)
    return jsonify(received=True, outcome="processed", size=len(payload))
