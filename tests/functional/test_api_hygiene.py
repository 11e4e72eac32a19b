"""Bad input gets a clear JSON error and writes nothing; probes; request ids; OpenAPI."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from paywall.accounts.models import Account
from paywall.extensions import db
from tests.conftest import PASSWORD, AuthActions


def account_count(app: Flask) -> int:
    with app.app_context():
        return db.session.query(Account).count()


def test_malformed_json_is_a_400_json_error(client, app: Flask) -> None:
    response = client.post(
        "/api/v1/accounts", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert account_count(app) == 0


def test_wrong_types_and_unknown_fields_are_422(client, app: Flask) -> None:
    response = client.post("/api/v1/sessions", json={"email": ["x"], "password": 1, "x": 1})
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert {"email", "password", "x"} <= set(fields)


def test_oversized_body_is_413(client, app: Flask) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * 70_000})
    response = client.post(
        "/api/v1/accounts", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
    assert account_count(app) == 0

    # The limits exactly: 64 KiB for the API, 1 MiB for the webhook (a byte over is 413; at
    # the limit the body is read and refused for what it says instead).
    def sized(path: str, size: int) -> int:
        return client.post(
            path, data=b"x" * size, headers={"Content-Type": "application/json"}
        ).status_code

    assert sized("/api/v1/accounts", 64 * 1024 + 1) == 413
    assert sized("/api/v1/accounts", 64 * 1024) == 400
    assert sized("/api/v1/stripe/webhook", 1024 * 1024 + 1) == 413
    assert sized("/api/v1/stripe/webhook", 1024 * 1024) == 400


def test_404_and_405_are_json_on_the_api(client) -> None:
    missing = client.get("/api/v1/nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    wrong = client.put("/api/v1/accounts")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"]["code"] == "method_not_allowed"


def test_unauthenticated_api_calls_get_401_json(client) -> None:
    response = client.get("/api/v1/account")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_healthz_and_readyz(client) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["database"] == "ok"


def test_readyz_is_503_when_the_database_is_unreachable(smtp_server) -> None:
    from paywall import create_app
    from tests.conftest import base_config

    _box, port = smtp_server
    unreachable = create_app(base_config("postgresql://nobody@127.0.0.1:1/none", port))
    response = unreachable.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_request_id_is_returned_and_echoed(client) -> None:
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "frontend-abc-123"})
    assert echoed.headers["X-Request-ID"] == "frontend-abc-123"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert unsafe.headers["X-Request-ID"] != "<script>alert(1)</script>"


def test_logs_are_json_lines_with_the_request_id(app: Flask, client) -> None:
    import io
    import logging

    [handler] = [h for h in logging.getLogger("paywall").handlers if hasattr(h, "setStream")]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        response = client.get("/healthz", headers={"X-Request-ID": "trace-me-12345"})
    finally:
        handler.setStream(previous)
    assert response.status_code == 200
    lines = [line for line in buffer.getvalue().splitlines() if "trace-me-12345" in line]
    record = json.loads(lines[-1])
    assert record["request_id"] == "trace-me-12345"
    assert record["path"] == "/healthz" and record["status"] == 200


def test_openapi_document_is_generated_from_the_schemas(client) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    signup = spec["paths"]["/api/v1/accounts"]["post"]
    schema_ref = signup["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"email", "password"}
    assert schema["properties"]["password"]["minLength"] == 8
    assert "/api/v1/sessions/{session_id}" in spec["paths"]


class TestCsrf:
    def test_cross_site_cookie_write_is_refused(self, auth: AuthActions, reader: str) -> None:
        browser = auth.browser()
        ids = [s["id"] for s in browser.get("/api/v1/sessions").get_json()["sessions"]]
        forged = browser.delete(
            f"/api/v1/sessions/{ids[0]}", headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403
        assert forged.get_json()["error"]["code"] == "csrf_failed"
        cross = browser.delete("/api/v1/sessions/current", headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        assert browser.get("/api/v1/account").status_code == 200  # nothing changed

    def test_same_origin_and_bearer_writes_pass(self, auth: AuthActions, reader: str) -> None:
        browser = auth.browser()
        ok = browser.post(
            "/api/v1/account/verification-email", headers={"Origin": "https://paywall.test"}
        )
        assert ok.status_code == 202
        _b, login = auth.log_in()
        token = login.get_json()["token"]
        bearer = _b.application.test_client(use_cookies=False).delete(
            "/api/v1/sessions/current",
            headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"},
        )
        assert bearer.status_code == 204

    @pytest.mark.parametrize(
        "app_config", [{"TRUSTED_ORIGINS": ["https://app.news.test", "https://m.news.test:8443"]}]
    )
    def test_the_sites_and_trusted_origins_may_write_others_may_not(
        self, auth: AuthActions, reader: str
    ) -> None:
        """The allow-list: PUBLIC_URL, SITE_URL and PAYWALL_TRUSTED_ORIGINS, by exact origin."""
        browser = auth.browser()
        allowed = (
            "https://news.test",  # SITE_URL
            "https://NEWS.test",  # origins compare case-insensitively
            "https://app.news.test",
            "https://m.news.test:8443",
        )
        for origin in allowed:
            ok = browser.post("/api/v1/account/verification-email", headers={"Origin": origin})
            assert ok.status_code == 202, origin
        refused = (
            "http://news.test",  # another scheme
            "https://news.test:444",  # another port
            "https://evil.news.test",  # a subdomain not listed
            "https://news.test.evil.example",
            "https://m.news.test",  # the listed one has a port
            "null",
        )
        for origin in refused:
            forged = browser.post("/api/v1/account/verification-email", headers={"Origin": origin})
            assert forged.status_code == 403, origin
            assert forged.get_json()["error"]["code"] == "csrf_failed", origin

    @pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
    def test_forms_without_a_csrf_token_are_refused(self, app: Flask, reader: str) -> None:
        response = app.test_client().post("/login", data={"email": reader, "password": PASSWORD})
        assert response.status_code == 400
        assert b"CSRF" in response.data


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict:
    return getattr(request, "param", {})
