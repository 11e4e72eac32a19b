"""The Stripe API version is pinned on the client, overridable, and the SDK range in
pyproject.toml is one that works (its lower bound is installed and exercised here)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from packaging.version import Version

from paywall.billing.gateway import API_VERSION
from stripe_standin.store import API_VERSION as STANDIN_VERSION
from tests.conftest import STANDIN_API_KEY, AuthActions, Mailbox, make_app, truncate_all

ROOT = Path(__file__).resolve().parents[2]


def test_every_request_names_the_pinned_version(
    billing_app: Flask, billing_auth: AuthActions, standin: Any
) -> None:
    billing_auth.sign_up()
    browser = billing_auth.browser()
    assert browser.post("/api/v1/billing/checkout", json={"plan": "premium_monthly"}).status_code
    versions = {r.stripe_version for r in standin.requests}
    assert versions == {API_VERSION}
    assert API_VERSION == STANDIN_VERSION  # the stand-in speaks what the service pins


def test_the_version_is_a_setting_and_a_refused_version_is_a_clear_502(
    database_url: str, smtp_server: tuple[Mailbox, int], standin: Any
) -> None:
    _box, port = smtp_server
    app = make_app(
        database_url,
        port,
        STRIPE_API_KEY=STANDIN_API_KEY,
        STRIPE_WEBHOOK_SECRET=["whsec_x"],
        STRIPE_API_BASE=standin.url,
        STRIPE_API_VERSION="2025-03-31.basil",
    )
    try:
        response = app.test_client().get("/api/v1/plans")
        assert [r.stripe_version for r in standin.requests] == ["2025-03-31.basil"]
        assert response.status_code == 502
        error = response.get_json()["error"]
        assert error["code"] == "payment_provider_error"
        assert "basil" not in error["message"] and "stand-in" not in error["message"]
    finally:
        truncate_all(app)


def sdk_lower_bound() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'"stripe>=([0-9.]+),<([0-9.]+)"', text)
    assert found, "pyproject.toml must bound the stripe SDK on both sides"
    return found.group(1)


SMOKE = textwrap.dedent(
    """
    import sys, stripe
    from paywall.billing.gateway import StripeGateway
    gw = StripeGateway(sys.argv[1], api_base=sys.argv[2], max_network_retries=0)
    product = gw.create_product({"name": "P", "metadata": {"entitlements": "x"}}, "k-prod")
    price = gw.create_price({"product": product["id"], "currency": "usd", "unit_amount": 100,
                             "recurring": {"interval": "month"}, "lookup_key": "lb"}, "k-price")
    assert [p["id"] for p in gw.list_recurring_prices()] == [price["id"]]
    assert gw.find_price("lb")["product"]["id"] == product["id"]
    customer = gw.create_customer("acct_lb", "lb@example.com")
    assert gw.retrieve_customer(customer["id"])["metadata"]["paywall_account_id"] == "acct_lb"
    session = gw.create_checkout_session({
        "mode": "subscription", "customer": customer["id"], "success_url": "https://x.test/",
        "line_items": [{"price": price["id"], "quantity": 1}]}, "k-cs")
    assert gw.retrieve_checkout_session(session["id"])["url"]
    assert gw.list_subscriptions(customer["id"]) == []
    assert gw.create_portal_session(customer["id"], "https://x.test/")["url"]
    print("ok", stripe.VERSION, session["id"])
    """
)


@pytest.mark.slow
def test_the_lowest_sdk_allowed_by_pyproject_works(tmp_path: Path, standin: Any) -> None:
    lower = sdk_lower_bound()
    target = tmp_path / "sdk"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
        + [f"stripe=={lower}"],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", SMOKE, STANDIN_API_KEY, standin.url],
        env={"PYTHONPATH": f"{target}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ok, version, session_id = result.stdout.split()
    assert (ok, Version(version), session_id[:8]) == ("ok", Version(lower), "cs_test_")
    assert {r.stripe_version for r in standin.requests} == {API_VERSION}
