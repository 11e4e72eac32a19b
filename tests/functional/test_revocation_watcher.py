"""The frontend's watcher follows the feed over real HTTP: a sign-out or a cancellation reaches
it within seconds (times are reported, not asserted); when the feed is unreachable it keeps its
state, reports staleness, and serves or refuses as configured."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from flask import Flask

from paywall.entitlements.verifier import TokenError
from paywall.entitlements.watcher import STALE, RevocationWatcher, TokenRevoked
from tests.conftest import AuthActions
from tests.stack import serve

PUBLISHER_KEY = secrets.token_urlsafe(32)


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"PUBLISHER_API_KEYS": [PUBLISHER_KEY]}


def until(check: Any, timeout: float = 60.0) -> float:
    """Seconds until ``check()`` holds (a liveness bound, not a timing assertion)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError("not within the liveness bound")


def test_watcher_sees_a_sign_out_and_refuses_the_sessions_tokens(
    app: Flask, auth: AuthActions, reader: str, record_property: Any
) -> None:
    served = serve(app)
    watcher = RevocationWatcher(served.url, PUBLISHER_KEY, wait=5).start()
    try:
        assert watcher.wait_synced(60)
        laptop = auth.browser(name="Laptop")
        phone = auth.browser(name="Phone")
        sids = {
            s["device_name"]: s["id"] for s in laptop.get("/api/v1/sessions").get_json()["sessions"]
        }
        sub = laptop.get("/api/v1/account").get_json()["id"]
        now = int(time.time())
        assert watcher.is_revoked(sub, sids["Phone"], now) is None
        started = time.monotonic()
        assert phone.delete("/api/v1/sessions/current").status_code == 204
        until(lambda: watcher.is_revoked(sub, sids["Phone"], now) is not None)
        record_property("feed_delivery_seconds", round(time.monotonic() - started, 3))
        assert watcher.is_revoked(sub, sids["Phone"], now) == "signed_out"
        assert watcher.is_revoked(sub, sids["Laptop"], now) is None
        with pytest.raises(TokenRevoked) as refused:
            watcher.check({"sub": sub, "sid": sids["Phone"], "iat": now})
        assert isinstance(refused.value, TokenError) and refused.value.reason == "revoked"
        assert watcher.staleness == 0.0 and not watcher.stale
    finally:
        watcher.stop()
        served.stop()


def test_an_unreachable_feed_keeps_the_state_reports_staleness_and_serves_or_refuses(
    app: Flask, auth: AuthActions, reader: str
) -> None:
    served = serve(app)
    serving = RevocationWatcher(served.url, PUBLISHER_KEY, wait=1, max_staleness=1, timeout=1)
    refusing = RevocationWatcher(
        served.url, PUBLISHER_KEY, wait=1, max_staleness=1, timeout=1, on_stale="refuse"
    )
    laptop = auth.browser(name="Laptop")
    sub = laptop.get("/api/v1/account").get_json()["id"]
    sid = laptop.get("/api/v1/sessions").get_json()["sessions"][0]["id"]
    laptop.delete("/api/v1/sessions/current")
    for w in (serving, refusing):
        w.start()
        assert w.wait_synced(60)
    try:
        until(lambda: serving.is_revoked(sub, sid, 0) == "signed_out")
        served.stop()  # the service goes away
        until(lambda: serving.stale and refusing.stale)
        assert serving.staleness > 1 and serving.failures >= 1
        assert serving.is_revoked(sub, sid, 0) == "signed_out"  # the last state stays
        assert serving.is_revoked(sub, "another-session", 0) is None  # and it keeps serving
        assert refusing.is_revoked(sub, "another-session", 0) == STALE
    finally:
        serving.stop()
        refusing.stop()


def test_watcher_with_a_wrong_key_never_syncs(app: Flask) -> None:
    served = serve(app)
    watcher = RevocationWatcher(served.url, "wrong-" + PUBLISHER_KEY, wait=1).start()
    try:
        assert not watcher.wait_synced(1.5)
        assert watcher.failures >= 1 and watcher.staleness == float("inf")
    finally:
        watcher.stop()
        served.stop()


def test_a_server_that_does_not_hold_polls_is_asked_about_once_a_second() -> None:
    """A sync worker answers a long poll at once: the watcher must not spin on it."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked: list[float] = []

    class AtOnce(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            asked.append(time.monotonic())
            body = json.dumps({"revocations": [], "cursor": "0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), AtOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    watcher = RevocationWatcher(f"http://127.0.0.1:{server.server_port}", "key", wait=25).start()
    try:
        assert watcher.wait_synced(60)
        time.sleep(3)
    finally:
        watcher.stop()
        server.shutdown()
        server.server_close()
    assert 2 <= len(asked) <= 8  # about one a second, not thousands
