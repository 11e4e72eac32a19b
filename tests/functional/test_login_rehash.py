"""A login upgrades a hash made with older parameters."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters
from flask import Flask

from paywall.accounts.models import Account
from paywall.extensions import db
from tests.conftest import AuthActions


@pytest.fixture
def app_config() -> dict:
    return {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 2048}


def test_login_rehashes_when_parameters_change(app: Flask, auth: AuthActions, reader: str) -> None:
    with app.app_context():
        before = db.session.query(Account).one().password_hash
    assert extract_parameters(before).memory_cost == 2048
    app.config["ARGON2_MEMORY_COST"] = 4096
    app.extensions.pop("paywall.hashing")
    auth.browser()
    with app.app_context():
        after = db.session.query(Account).one().password_hash
    assert extract_parameters(after).memory_cost == 4096
