"""The one module that talks to push services: RFC 8291 encryption through pywebpush (http-ece),
RFC 8292 VAPID signatures through py-vapid. Nothing else in the service imports either.

https://www.rfc-editor.org/rfc/rfc8030 (delivery), rfc8291 (encryption), rfc8292 (VAPID)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher

#: How long a signed VAPID header is reused per push service; RFC 8292 allows up to 24 h.
VAPID_LIFETIME = 12 * 3600
VAPID_RENEW_BEFORE = 3600


class VapidKeyInvalid(ValueError):
    """``PAYWALL_VAPID_PRIVATE_KEY`` cannot be read as a P-256 private key."""


def load_vapid_key(value: str) -> Vapid:
    """A VAPID key from PEM text, base64url DER or a base64url raw 32-byte key."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            return Vapid.from_pem(text.encode())
        return Vapid.from_string(text)
    except (VapidException, ValueError, TypeError, binascii.Error) as exc:
        raise VapidKeyInvalid(str(exc) or "not a P-256 private key") from exc


def demo_vapid_key(instance_path: str) -> str:
    """The demo's VAPID key, generated once into ``instance/`` (mode 0600) and reused."""
    path = Path(instance_path) / "vapid_private_key.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Vapid()
        key.generate_keys()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.private_pem())
    return path.read_text()


def new_vapid_pem() -> str:
    """A fresh VAPID private key as PEM (``flask notifications vapid-key``, tests)."""
    key = Vapid()
    key.generate_keys()
    return str(key.private_pem().decode())


def application_server_key(key: Vapid) -> str:
    """The public key as browsers want it for ``applicationServerKey``: base64url of the
    uncompressed P-256 point, unpadded."""
    raw = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(raw)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def valid_client_keys(p256dh: str, auth: str) -> str | None:
    """None if ``p256dh`` is a 65-byte uncompressed point on P-256 and ``auth`` a 16-byte
    secret (RFC 8291 §3), else what is wrong."""
    try:
        point = b64url_decode(p256dh)
        secret = b64url_decode(auth)
    except (binascii.Error, ValueError):
        return "keys must be base64url"
    if len(point) != 65 or point[0] != 4:
        return "p256dh must be a 65-byte uncompressed P-256 point"
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return "p256dh is not a point on P-256"
    if len(secret) != 16:
        return "auth must be a 16-byte secret"
    return None


def message_topic(story_id: str) -> str:
    """RFC 8030 §5.4 ``Topic`` for a story: a repeat of the same story replaces the copy the push
    service still holds instead of adding a second one. At most 32 base64url characters."""
    return b64url(hashlib.sha256(story_id.encode()).digest())[:32]


@dataclass(frozen=True)
class PushResult:
    """What a push service answered: ``status`` None means no answer (timeout, refused)."""

    status: int | None
    retry_after: float | None = None
    detail: str = ""

    @property
    def delivered(self) -> bool:
        return self.status in (200, 201, 202)

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class PushSender:
    """Encrypts, signs and POSTs push messages; one per worker process (it keeps connections
    and the signed VAPID headers of each push service)."""

    def __init__(self, key: Vapid, subject: str, timeout: float = 10.0) -> None:
        self.key = key
        self.subject = subject
        self.timeout = timeout
        self.http = requests.Session()
        self.http.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=16))
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
        self._vapid: dict[str, tuple[int, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def vapid_headers(self, endpoint: str, now: float | None = None) -> dict[str, str]:
        """The ``Authorization: vapid t=…, k=…`` header for the endpoint's push service:
        ``aud`` its origin, ``exp`` 12 h ahead, re-signed an hour before it runs out."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        moment = int(now if now is not None else time.time())
        with self._lock:
            cached = self._vapid.get(audience)
            if cached is None or cached[0] - moment < VAPID_RENEW_BEFORE:
                exp = moment + VAPID_LIFETIME
                claims = {"aud": audience, "exp": exp, "sub": self.subject}
                cached = (exp, dict(self.key.sign(claims)))
                self._vapid[audience] = cached
        return dict(cached[1])

    def send(
        self,
        endpoint: str,
        p256dh: str,
        auth: str,
        payload: bytes,
        *,
        ttl: int,
        urgency: str,
        topic: str,
    ) -> PushResult:
        """Encrypt ``payload`` (aes128gcm) for the subscription and POST it; never raises for
        what the push service answers or for the network."""
        info = {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
        headers = {**self.vapid_headers(endpoint), "Urgency": urgency, "Topic": topic}
        try:
            response: Any = WebPusher(info, requests_session=self.http).send(
                payload,
                headers,
                ttl=ttl,
                content_encoding="aes128gcm",
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            return PushResult(None, detail=type(exc).__name__)
        status = int(response.status_code)
        return PushResult(
            status,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            detail="" if status < 300 else response.text[:200],
        )

    def close(self) -> None:
        self.http.close()
