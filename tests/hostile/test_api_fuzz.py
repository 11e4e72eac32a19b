"""Fuzz the JSON API from its own OpenAPI document (schemathesis) against a live server on
loopback: no 5xx, and every response matches the document (status, content type, schema)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PASSWORD

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    # Input the document forbids must be refused (4xx), and an operation that declares a
    # security scheme must refuse a request without (or with wrong) credentials.
    negative_data_rejection,
    ignored_auth,
]


@pytest.fixture
def api_schema(live_stack: Any) -> Any:
    return schemathesis.openapi.from_url(live_stack.service.url + "/api/v1/openapi.json")


@pytest.fixture
def app_config() -> dict:
    # Every operation gets a fresh device session; the oldest make room (and the fuzzer may
    # well sign the current one out with DELETE /sessions/current).
    return {"DEVICE_POLICY": "evict_lru"}


def fresh_bearer(url: str) -> dict[str, str]:
    requests.post(
        url + "/api/v1/accounts",
        json={"email": "fuzz@example.com", "password": PASSWORD},
        timeout=5,
    )
    login = requests.post(
        url + "/api/v1/sessions",
        json={"email": "fuzz@example.com", "password": PASSWORD},
        timeout=5,
    )
    assert login.status_code == 201, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def fuzz(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    bearer: dict[str, str],
    statuses: dict[tuple[str, str], set[int]],
) -> None:
    """Up to 30 generated requests for one operation, each response checked against the doc."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        # A request line longer than a server reads (werkzeug 64 KiB, nginx 8 KiB) is refused
        # with 414 before the app sees it: outside what the document describes.
        assume(len(urlencode(case.query or {}, doseq=True)) < 4096)
        response = case.call_and_validate(base_url=base_url, headers=dict(bearer), checks=CHECKS)
        statuses[(operation.method.upper(), operation.path)].add(response.status_code)

    try:
        run()
    except Unsatisfiable:
        # Negative mode has nothing to break in an operation without inputs.
        assert mode is GenerationMode.NEGATIVE, operation.path


def test_api_conforms_to_its_document(api_schema: Any, live_stack: Any) -> None:
    # Schemathesis' own pytest plugin does not support this pytest yet, so the hypothesis
    # strategies it derives from the document are driven here, one operation at a time.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    statuses: dict[tuple[str, str], set[int]] = defaultdict(set)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            bearer = fresh_bearer(live_stack.service.url)
            fuzz(operation, mode, live_stack.service.url, bearer, statuses)
    # The fuzzer got past authentication: signed-in operations answered something else than 401.
    assert statuses[("POST", "/api/v1/billing/checkout")] - {401}
    assert statuses[("GET", "/api/v1/account")] == {200}


def test_the_document_says_which_operations_need_a_reader(client: Any) -> None:
    """What ``ignored_auth`` relies on: an operation that refuses a request without
    credentials declares a security scheme, and one that declares it refuses."""
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"readerSession", "readerCookie"} <= set(spec["components"]["securitySchemes"])
    checked = 0
    for path, operations in spec["paths"].items():
        url = re.sub(r"\{[^}]+\}", "x", path)
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            status = client.open(url, method=method.upper(), json={}).status_code
            schemes = {name for option in operation.get("security", []) for name in option}
            if schemes:
                assert status == 401, (method, path, status)
            else:
                assert status != 401, (method, path, "answers 401 but declares no security")
            checked += 1
    assert checked >= 20
