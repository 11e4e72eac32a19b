"""Publisher API keys: only a configured key passes; everything else is the same 401."""

from __future__ import annotations

import secrets

import pytest
from flask import Flask, jsonify

from paywall import create_app
from paywall.publishers.auth import matching_key_index, publisher_required

NEW, OLD = secrets.token_urlsafe(32), secrets.token_urlsafe(32)


@pytest.fixture
def publisher_app(tmp_path) -> Flask:
    app = create_app(
        {
            "DEMO": True,
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite3",
            "PUBLISHER_API_KEYS": f"{NEW},{OLD}",  # comma-separated, as from the environment
        }
    )

    @app.get("/api/v1/_publisher_probe")
    @publisher_required
    def probe():  # a route of the test's own, guarded like the product's publisher calls
        from flask import g

        return jsonify(key_index=g.publisher_key_index)

    return app


@pytest.mark.parametrize(("key", "index"), [(NEW, 0), (OLD, 1)])
def test_every_configured_key_is_accepted(publisher_app: Flask, key: str, index: int) -> None:
    response = publisher_app.test_client().get(
        "/api/v1/_publisher_probe", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    assert response.get_json() == {"key_index": index}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer ",
        f"Basic {NEW}",
        f"Bearer {NEW[:-1]}",
        f"Bearer {NEW}x",
        "Bearer " + secrets.token_urlsafe(32),
        "Bearer \udcff",
    ],
)
def test_anything_else_is_401_with_the_json_error(publisher_app: Flask, header) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = publisher_app.test_client().get("/api/v1/_publisher_probe", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "publisher_key_required"


def test_no_configured_keys_means_nobody_passes() -> None:
    assert matching_key_index(NEW, []) is None
    assert matching_key_index("", [NEW]) is None
    assert matching_key_index(NEW, [OLD, NEW]) == 1


def test_the_openapi_document_describes_the_key(publisher_app: Flask) -> None:
    spec = publisher_app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["publisherKey"]["scheme"] == "bearer"
