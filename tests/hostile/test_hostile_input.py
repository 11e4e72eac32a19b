"""Hostile input gets a 4xx with the JSON error body, never a 500 (issue 11), and every answer
carries the security headers."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import PASSWORD, AuthActions

BODIES = {
    "30,000-deep JSON": b"[" * 30_000 + b"]" * 30_000,
    "5,000-digit integer": b'{"email": "a@example.com", "password": ' + b"9" * 5000 + b"}",
    "lone surrogate in a password": b'{"email": "a@example.com", "password": "abcdefgh\\ud800"}',
    "NUL in device_name": (
        b'{"email": "reader@example.com", "password": "correct horse battery staple", '
        b'"device_name": "x\\u0000y"}'
    ),
}


@pytest.mark.parametrize("path", ["/api/v1/sessions", "/api/v1/accounts"])
@pytest.mark.parametrize("name", list(BODIES))
def test_hostile_json_is_a_4xx_with_the_error_body(
    client, reader: str, path: str, name: str
) -> None:
    response = client.post(path, data=BODIES[name], content_type="application/json")
    assert 400 <= response.status_code < 500, (name, response.status_code)
    assert response.get_json()["error"]["code"]


def test_nul_in_a_path_is_a_4xx(auth: AuthActions, reader: str) -> None:
    browser = auth.browser()
    response = browser.delete("/api/v1/sessions/abc%00def")
    assert 400 <= response.status_code < 500
    assert response.get_json()["error"]["code"]


def test_nul_in_a_form_field_is_a_4xx(client, reader: str) -> None:
    response = client.post(
        "/login", data={"email": "reader@example.com", "password": PASSWORD, "device_name": "a\x00"}
    )
    assert 400 <= response.status_code < 500


def test_security_headers_on_pages_and_api(client, app: Flask) -> None:
    for path in ("/login", "/api/v1/openapi.json", "/healthz"):
        response = client.get(path)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "camera=()" in response.headers["Permissions-Policy"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert response.headers["Server"] == "paywall"


def test_authenticated_answers_are_not_stored(auth: AuthActions, reader: str) -> None:
    browser, login = auth.log_in()
    assert login.headers["Cache-Control"] == "no-store"
    for path in ("/api/v1/account", "/api/v1/sessions", "/", "/devices"):
        assert browser.get(path).headers.get("Cache-Control") == "no-store", path


def test_no_hsts_in_demo(tmp_path) -> None:
    from paywall import create_app

    app = create_app({"DEMO": True, "DATABASE_URL": f"sqlite:///{tmp_path}/d.sqlite3"})
    assert "Strict-Transport-Security" not in app.test_client().get("/healthz").headers
