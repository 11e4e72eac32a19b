"""The push stand-in: a Flask app, and ``PushStandIn``, which serves it from a thread."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, Response, jsonify, render_template_string, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

log = logging.getLogger("push_standin")
MAX_BODY = 4096  # RFC 8030 §7.2: push services must accept at least 4096 bytes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Message:
    """A push as a browser would get it: the decrypted payload and the headers it came with."""

    endpoint: str
    payload: bytes
    ttl: int
    urgency: str
    topic: str | None
    vapid_claims: dict[str, Any]
    received_at: float
    replaced: int = 0  # earlier messages with the same Topic this one replaced

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Endpoint:
    token: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    public: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    posts: int = 0  # every POST, accepted or not
    gone: bool = False
    fault: dict[str, Any] | None = None  # {"status", "times", "retry_after"}


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


PAGE = """<!doctype html><meta charset="utf-8"><title>Push stand-in</title>
<style>body{font:15px system-ui;margin:2em}td,th{padding:.3em .8em;text-align:left;
border-bottom:1px solid #ddd}code{font-size:13px}</style>
<h1>Push stand-in</h1><p>{{ count }} message(s) received on {{ endpoints }} subscription(s).
VAPID signatures verified and payloads decrypted here, as a browser's push service would.</p>
<table><tr><th>received</th><th>title</th><th>url</th><th>urgency</th><th>TTL</th>
<th>VAPID sub</th><th>endpoint</th></tr>
{% for m in messages %}<tr><td>{{ m.when }}</td><td>{{ m.title }}</td>
<td><a href="{{ m.url }}">{{ m.url }}</a></td><td>{{ m.urgency }}</td><td>{{ m.ttl }}</td>
<td>{{ m.sub }}</td><td><code>{{ m.endpoint }}</code></td></tr>{% endfor %}</table>"""


class PushStandIn:
    """A push service on loopback. ``verify=False`` (benchmarks only) skips decryption."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verify: bool = True) -> None:
        self.host = host
        self.port = port
        self.verify = verify
        self._endpoints: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self.app = self._create_app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.rejected: list[tuple[str, int, str]] = []  # (token, status, why)
        #: Seconds each push waits before it is handled (tests: a slow push service, so a
        #: worker can be caught mid-fan-out).
        self.delay = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> PushStandIn:
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=_Quiet
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> PushStandIn:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what a browser and a test do ------------------------------------------------------------
    def new_subscription(self) -> dict[str, Any]:
        """A browser's ``PushSubscription.toJSON()`` for a fresh endpoint of this service."""
        token = secrets.token_urlsafe(16)
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        subscription = {
            "endpoint": f"{self.url}/push/{token}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
        }
        with self._lock:
            self._endpoints[token] = Endpoint(token, key, auth, subscription)
        return subscription

    def many_subscriptions(self, count: int) -> list[dict[str, Any]]:
        """``count`` subscriptions sharing one key pair (benchmarks: the sender still encrypts
        each message with a key of its own, as RFC 8291 has it; only making them is cheap)."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": b64url(public), "auth": b64url(auth)}
        made = []
        with self._lock:
            for _ in range(count):
                token = secrets.token_urlsafe(16)
                subscription = {
                    "endpoint": f"{self.url}/push/{token}",
                    "expirationTime": None,
                    "keys": keys,
                }
                self._endpoints[token] = Endpoint(token, key, auth, subscription)
                made.append(subscription)
        return made

    def forget_messages(self) -> None:
        """Drop what arrived, keep the endpoints (between benchmark runs)."""
        with self._lock:
            for found in self._endpoints.values():
                found.messages.clear()
                found.posts = 0

    def arrival_times(self) -> list[float]:
        """When each message held arrived (``time.time()``), sorted."""
        with self._lock:
            return sorted(m.received_at for e in self._endpoints.values() for m in e.messages)

    def received(self) -> int:
        """How many messages are held, over every endpoint."""
        with self._lock:
            return sum(len(e.messages) for e in self._endpoints.values())

    def messages(self, endpoint: str | None = None) -> list[Message]:
        with self._lock:
            found = [self._endpoint(endpoint)] if endpoint else list(self._endpoints.values())
            return [m for e in found if e for m in e.messages]

    def posts(self, endpoint: str) -> int:
        with self._lock:
            found = self._endpoint(endpoint)
            return found.posts if found else 0

    def fail(
        self, endpoint: str, status: int, times: int | None = None, retry_after: str | None = None
    ) -> None:
        """Answer ``status`` to the next ``times`` pushes to ``endpoint`` (None: all of them).
        410 also forgets the subscription, as a push service does when a browser drops it."""
        with self._lock:
            found = self._endpoint(endpoint)
            assert found is not None, endpoint
            found.fault = {"status": status, "times": times, "retry_after": retry_after}

    def reset(self) -> None:
        with self._lock:
            self.delay = 0.0
            self._endpoints.clear()
            self.rejected.clear()

    def _endpoint(self, endpoint: str | None) -> Endpoint | None:
        if endpoint is None:
            return None
        return self._endpoints.get(endpoint.rstrip("/").rsplit("/", 1)[-1])

    # -- the push service ----------------------------------------------------------------------
    def _create_app(self) -> Flask:
        app = Flask("push_standin")
        app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

        @app.post("/push/<token>")
        def receive(token: str) -> Response:
            return self._receive(token)

        @app.post("/subscriptions")
        def subscribe() -> Response:
            return jsonify(self.new_subscription())

        @app.post("/endpoints/<token>/fault")
        def fault(token: str) -> Response:
            body = request.get_json(force=True)
            self.fail(f"/{token}", int(body["status"]), body.get("times"), body.get("retry_after"))
            return jsonify({"ok": True})

        @app.get("/messages")
        def list_messages() -> Response:
            return jsonify(
                [
                    {
                        "endpoint": m.endpoint,
                        "payload": m.json(),
                        "urgency": m.urgency,
                        "ttl": m.ttl,
                        "topic": m.topic,
                        "vapid_claims": m.vapid_claims,
                    }
                    for m in self.messages()
                ]
            )

        @app.get("/")
        def page() -> str:
            rows = []
            for m in sorted(self.messages(), key=lambda m: -m.received_at)[:200]:
                data = m.json() if self.verify else {}
                rows.append(
                    {
                        "when": time.strftime("%H:%M:%S", time.localtime(m.received_at)),
                        "title": data.get("title", "(not decrypted)"),
                        "url": data.get("url", ""),
                        "urgency": m.urgency,
                        "ttl": m.ttl,
                        "sub": m.vapid_claims.get("sub", ""),
                        "endpoint": m.endpoint,
                    }
                )
            return render_template_string(
                PAGE, messages=rows, count=len(self.messages()), endpoints=len(self._endpoints)
            )

        return app

    def _refuse(self, token: str, status: int, why: str) -> Response:
        self.rejected.append((token, status, why))
        log.info("push refused", extra={"status": status, "why": why})
        response = jsonify({"code": status, "error": why})
        response.status_code = status
        return response

    def _receive(self, token: str) -> Response:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            found = self._endpoints.get(token)
            if found is not None:
                found.posts += 1
        if found is None or found.gone:
            return self._refuse(token, 410 if found else 404, "no such subscription")
        fault = self._take_fault(found)
        if fault is not None:
            return fault
        claims, problem = self._check_vapid(request.headers.get("Authorization", ""))
        if problem:
            return self._refuse(token, 401 if problem != "key" else 403, problem)
        ttl = request.headers.get("TTL", "")
        if not ttl.isdigit():
            return self._refuse(token, 400, "TTL header missing")  # RFC 8030 §5.2
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._refuse(token, 415, "Content-Encoding must be aes128gcm")
        body = request.get_data()
        if len(body) > MAX_BODY:
            return self._refuse(token, 413, "payload larger than 4096 bytes")
        payload = b""
        if self.verify:
            try:
                payload = http_ece.decrypt(
                    body,
                    private_key=found.private_key,
                    auth_secret=found.auth,
                    version="aes128gcm",
                )
            except Exception as exc:  # noqa: BLE001 - any failure is the sender's fault
                return self._refuse(token, 400, f"cannot decrypt: {exc}")
        topic = request.headers.get("Topic")
        message = Message(
            endpoint=found.public["endpoint"],
            payload=payload,
            ttl=int(ttl),
            urgency=request.headers.get("Urgency", "normal"),
            topic=topic,
            vapid_claims=claims,
            received_at=time.time(),
        )
        with self._lock:
            # RFC 8030 §5.4: a message with the Topic of one still held replaces it.
            held = [m for m in found.messages if topic and m.topic == topic]
            if held:
                message.replaced = held[0].replaced + 1
                found.messages.remove(held[0])
            found.messages.append(message)
        response = Response(status=201)
        response.headers["Location"] = f"{self.url}/messages/{secrets.token_urlsafe(8)}"
        return response

    def _take_fault(self, found: Endpoint) -> Response | None:
        with self._lock:
            fault = found.fault
            if fault is None:
                return None
            if fault["times"] is not None:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    found.fault = None
            if fault["status"] in (404, 410):
                found.gone = True
        response = jsonify({"code": fault["status"], "error": "told to fail"})
        response.status_code = fault["status"]
        if fault.get("retry_after"):
            response.headers["Retry-After"] = fault["retry_after"]
        return response

    def _check_vapid(self, header: str) -> tuple[dict[str, Any], str]:
        """RFC 8292 §3: ``vapid t=<JWT>, k=<public key>``; ES256; aud = this origin;
        exp in the future and at most 24 h away; sub a mailto: or https: URL."""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "vapid":
            return {}, "Authorization must use the vapid scheme"
        params = {}
        for part in rest.split(","):
            name, _, value = part.strip().partition("=")
            params[name] = value
        if "t" not in params or "k" not in params:
            return {}, "vapid needs t and k"
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(params["k"])
            )
        except (ValueError, TypeError):
            return {}, "key"
        origin = f"{urlsplit(self.url).scheme}://{urlsplit(self.url).netloc}"
        try:
            claims = jwt.decode(
                params["t"],
                key,
                algorithms=["ES256"],
                audience=origin,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return {}, f"VAPID JWT refused: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return {}, "VAPID exp more than 24 hours away"
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return {}, "VAPID sub must be a mailto: or https: URL"
        return claims, ""
