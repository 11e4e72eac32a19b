"""The stand-in creates the object but its answer is lost (the client times out); the service
retries with the same Idempotency-Key: one customer, one checkout session."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.conftest import AuthActions


@pytest.fixture
def app_config() -> dict:
    return {"STRIPE_TIMEOUT": 1, "STRIPE_MAX_NETWORK_RETRIES": 2}


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/checkout/sessions"])
def test_lost_response_is_retried_with_the_same_key(
    billing_app: Flask, billing_auth: AuthActions, standin: Any, path: str
) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    standin.add_fault("POST", path, mode="lose_response", times=1, delay=2)
    response = browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert response.status_code == 201, response.get_json()
    posts = [r for r in standin.requests if r.method == "POST" and r.path == path]
    assert len(posts) == 2  # the lost one and the SDK's retry
    assert posts[0].idempotency_key == posts[1].idempotency_key
    assert posts[1].replayed is True
    assert len(standin.objects("customer")) == 1
    assert len(standin.objects("checkout.session")) == 1
    # A second click later reuses the same session too.
    again = browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert again.get_json()["url"] == response.get_json()["url"]
    assert len(standin.objects("checkout.session")) == 1


@pytest.mark.parametrize("app_config", [{"STRIPE_TIMEOUT": 1, "STRIPE_MAX_NETWORK_RETRIES": 0}])
def test_when_every_answer_is_lost_the_reader_gets_503_and_the_next_try_reuses_the_object(
    billing_app: Flask, billing_auth: AuthActions, standin: Any
) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    standin.add_fault("POST", "/v1/checkout/sessions", mode="lose_response", times=1, delay=2)
    lost = browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert lost.status_code == 503
    retry = browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"})
    assert retry.status_code == 201
    assert len(standin.objects("checkout.session")) == 1
    assert len(standin.objects("customer")) == 1
