"""Fixtures: one app per test on each configured database, a real SMTP server, auth actions.

SQLite always runs. With PAYWALL_TEST_DATABASE_URL (and PAYWALL_TEST_REDIS_URL) set, every
database-facing test runs on PostgreSQL (and Flask-Limiter counts in Redis) as well.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

from paywall import create_app
from paywall.database import dispose_read_engine
from paywall.entitlements.keys import generate_pem
from paywall.extensions import db, limiter

PG_URL = os.environ.get("PAYWALL_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("PAYWALL_TEST_REDIS_URL")
DB_KINDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
PG_SCHEMA = "paywall_test_" + uuid.uuid4().hex[:8]
PASSWORD = "correct horse battery staple"


def _vapid_key() -> str:
    from paywall.notifications.push import new_vapid_pem

    return new_vapid_pem()


#: Generated per test run, like every other key the tests use.
VAPID_KEY = _vapid_key()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- SMTP ---------------------------------------------------------------------------------
class Mailbox:
    """Messages received by a real SMTP server (aiosmtpd) on loopback."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"expected {count} emails, got {len(self.messages)}")

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[Mailbox, int]) -> Mailbox:
    box, _port = smtp_server
    box.clear()
    return box


def body_of(message: Message) -> str:
    """The plain-text part (every email also has an HTML one)."""
    if message.is_multipart():
        message = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = message.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(payload)


def html_of(message: Message) -> str:
    """The HTML part of an email."""
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    payload = part.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(payload)


def link_from(message: Message, path: str) -> str:
    """The token of the ``path?token=...`` link in an email."""
    for word in body_of(message).split():
        if path + "?token=" in word:
            return word.split("?token=", 1)[1]
    raise AssertionError(f"no {path} link in {body_of(message)!r}")


# -- databases ----------------------------------------------------------------------------
@pytest.fixture(scope="session", params=DB_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "paywall.sqlite3")
    assert PG_URL
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    request.addfinalizer(lambda: _drop_schema(PG_URL))
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{PG_SCHEMA}"


def _drop_schema(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    engine.dispose()


_migrated: set[str] = set()


def base_config(database_url: str, smtp_port: int, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_hex(32),
        "ENTITLEMENT_SIGNING_KEYS": [generate_pem()],
        "VAPID_PRIVATE_KEY": VAPID_KEY,
        "PUBLIC_URL": "https://paywall.test",
        "SITE_URL": "https://news.test",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "STRIPE_API_KEY": "sk_test_fake_" + secrets.token_hex(8),
        "STRIPE_WEBHOOK_SECRET": ["whsec_fake_" + secrets.token_hex(16)],
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # nothing listens: tests that pay use `standin`
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",  # one process; PostgreSQL runs count in Redis
        # Cheap hashing keeps the suite fast; tests/unit/accounts checks the OWASP defaults.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "ARGON2_PARALLELISM": 1,
        "WTF_CSRF_ENABLED": False,
        # Jobs run in the committing thread right after commit; tests/queue run real workers.
        "CELERY_TASK_ALWAYS_EAGER": True,
    }
    if database_url.startswith("postgresql") and REDIS_URL:
        config["RATELIMIT_STORAGE_URI"] = REDIS_URL
        config["REDIS_URL"] = REDIS_URL
    config.update(overrides)
    return config


class BufferedClient(FlaskClient):
    """Consumes and closes each response, as a WSGI server does, so ``call_on_close`` work
    (sending queued email) runs as it does in production."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def make_app(database_url: str, smtp_port: int, **overrides: Any) -> Flask:
    app = create_app(base_config(database_url, smtp_port, **overrides))
    app.test_client_class = BufferedClient
    if database_url not in _migrated:
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        _migrated.add(database_url)
    return app


def truncate_all(app: Flask) -> None:
    state = app.extensions.get("paywall.revocations")
    if state is not None:
        state.stop()  # its refresh thread would outlive the test
    with app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                db.session.execute(sa.text(f'DELETE FROM "{name}"'))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    dispose_read_engine(app)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test overrides: a test module may override this fixture."""
    return {}


@pytest.fixture
def app(
    database_url: str,
    smtp_server: tuple[Mailbox, int],
    mailbox: Mailbox,
    app_config: dict[str, Any],
) -> Iterator[Flask]:
    _box, port = smtp_server
    application = make_app(database_url, port, **app_config)
    if application.config["RATELIMIT_ENABLED"] and limiter.storage.check():
        limiter.reset()  # counts live in Redis or memory across apps; start each test at zero
    try:
        yield application
    finally:
        truncate_all(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db_kind(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


# -- actions ------------------------------------------------------------------------------
class AuthActions:
    """Sign up and log in through the API, as a reader's browser would."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def sign_up(self, email: str = "reader@example.com", password: str = PASSWORD) -> None:
        response = self.app.test_client().post(
            "/api/v1/accounts", json={"email": email, "password": password}
        )
        assert response.status_code == 202, response.get_json()

    def log_in(
        self,
        email: str = "reader@example.com",
        password: str = PASSWORD,
        device_name: str | None = None,
        **extra: Any,
    ) -> tuple[FlaskClient, Any]:
        """A fresh client (one browser) logged in; returns it and the 201 response."""
        browser = self.app.test_client()
        body: dict[str, Any] = {"email": email, "password": password, **extra}
        if device_name:
            body["device_name"] = device_name
        response = browser.post("/api/v1/sessions", json=body)
        return browser, response

    def browser(self, email: str = "reader@example.com", name: str = "Laptop") -> FlaskClient:
        browser, response = self.log_in(email, device_name=name)
        assert response.status_code == 201, response.get_json()
        return browser


@pytest.fixture
def auth(app: Flask) -> AuthActions:
    return AuthActions(app)


@pytest.fixture
def reader(auth: AuthActions) -> str:
    auth.sign_up()
    return "reader@example.com"


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


# -- Stripe stand-in ----------------------------------------------------------------------
STANDIN_API_KEY = "sk_test_standin_" + secrets.token_hex(12)
STANDIN_WEBHOOK_SECRET = "whsec_standin_" + secrets.token_hex(16)


@pytest.fixture(scope="session")
def standin_server() -> Iterator[Any]:
    from stripe_standin import StandIn

    with StandIn(STANDIN_API_KEY, STANDIN_WEBHOOK_SECRET, webhook_backoff=0.05) as server:
        yield server


@pytest.fixture
def standin(standin_server: Any) -> Iterator[Any]:
    standin_server.reset()
    standin_server.webhook_url = None
    yield standin_server
    standin_server.clear_faults()


@pytest.fixture
def billing_config(standin: Any) -> dict[str, Any]:
    return {
        "STRIPE_API_KEY": STANDIN_API_KEY,
        "STRIPE_WEBHOOK_SECRET": [STANDIN_WEBHOOK_SECRET],
        "STRIPE_API_BASE": standin.url,
        "STRIPE_TIMEOUT": 2,
    }


@pytest.fixture
def billing_app(
    database_url: str,
    smtp_server: tuple[Mailbox, int],
    mailbox: Mailbox,
    billing_config: dict[str, Any],
    app_config: dict[str, Any],
) -> Iterator[Flask]:
    """An app wired to the stand-in, with the demo catalogue created through the CLI."""
    _box, port = smtp_server
    application = make_app(database_url, port, **{**billing_config, **app_config})
    result = application.test_cli_runner().invoke(args=["billing", "create-demo-catalogue"])
    assert result.exit_code == 0, result.output
    try:
        yield application
    finally:
        truncate_all(application)


class Stripe:
    """What finance, time and Stripe's webhook sender do, for tests."""

    def __init__(self, app: Flask, standin: Any) -> None:
        import stripe

        self.app = app
        self.standin = standin
        self.client = stripe.StripeClient(
            STANDIN_API_KEY, base_addresses={"api": standin.url}, max_network_retries=0
        )

    def deliver(self, deliveries: list[Any] | None = None) -> list[Any]:
        """POST every queued webhook to the service, in order; returns the responses."""
        client = self.app.test_client()
        responses = []
        for delivery in self.standin.take_deliveries() if deliveries is None else deliveries:
            responses.append(
                client.post(
                    "/api/v1/stripe/webhook",
                    data=delivery.payload,
                    headers={
                        "Stripe-Signature": delivery.headers["Stripe-Signature"],
                        "Content-Type": "application/json",
                    },
                )
            )
        assert all(r.status_code == 200 for r in responses), [r.get_json() for r in responses]
        return responses

    def subscribe(
        self, browser: FlaskClient, plan: str = "premium_monthly", card: str = "4242 4242 4242 4242"
    ) -> dict[str, Any]:
        """Checkout as the reader would, pay with ``card``; returns the Stripe subscription."""
        response = browser.post("/api/v1/billing/checkout", json={"plan": plan})
        assert response.status_code == 201, response.get_json()
        session_id = response.get_json()["url"].rstrip("/").rsplit("/", 1)[1]
        completed = self.standin.complete_checkout(session_id, card_number=card)
        return self.standin.get(completed["subscription"])  # type: ignore[no-any-return]


@pytest.fixture
def stripe_actions(billing_app: Flask, standin: Any) -> Stripe:
    return Stripe(billing_app, standin)


@pytest.fixture
def billing_auth(billing_app: Flask) -> AuthActions:
    return AuthActions(billing_app)


@pytest.fixture
def live_stack(
    database_url: str, smtp_server: tuple[Mailbox, int], standin: Any, app_config: dict[str, Any]
) -> Iterator[Any]:
    """Service and news site over real HTTP on loopback, wired to the stand-in."""
    from tests.stack import start_stack

    _box, port = smtp_server
    stack = start_stack(database_url, port, standin, **app_config)
    try:
        yield stack
    finally:
        stack.stop()
        truncate_all(stack.service.app)
