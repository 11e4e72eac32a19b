"""Rate-limit keys and decorators for login, sign-up and reset (Flask-Limiter).

Two counters guard each: one per client address, one per account (the email in the body).
The per-account login counter only counts failures, so the owner's own logins never lock them
out; reset has its own counters, so an attacker who locked login cannot block the reset email.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_limiter.util import get_remote_address

from paywall.extensions import limiter


def email_key() -> str:
    """The account a request is about, from its JSON body or form."""
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if data is not None and hasattr(data, "get") else None
    return "email:" + (str(email).strip().lower() if email else "-")


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def _failed(response: Any) -> bool:
    return bool(response.status_code == 401)


login_per_address = limiter.shared_limit(
    _setting("LOGIN_LIMIT_PER_ADDRESS"), scope="login-address", key_func=get_remote_address
)
login_per_account = limiter.shared_limit(
    _setting("LOGIN_LIMIT_PER_ACCOUNT"),
    scope="login-account",
    key_func=email_key,
    deduct_when=_failed,
)
signup_per_address = limiter.shared_limit(
    _setting("SIGNUP_LIMIT_PER_ADDRESS"), scope="signup-address", key_func=get_remote_address
)
reset_per_address = limiter.shared_limit(
    _setting("RESET_LIMIT_PER_ADDRESS"), scope="reset-address", key_func=get_remote_address
)
reset_per_account = limiter.shared_limit(
    _setting("RESET_LIMIT_PER_ACCOUNT"), scope="reset-account", key_func=email_key
)
