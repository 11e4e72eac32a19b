"""The text of every email the accounts domain sends."""

from __future__ import annotations

from typing import NamedTuple


class Email(NamedTuple):
    kind: str
    subject: str
    body: str


def verify_email(link: str) -> Email:
    return Email(
        "verify_email",
        "Confirm your email address",
        f"Welcome! Confirm your address by opening this link:\n\n{link}\n\n"
        "The link works once and expires in 48 hours. If you did not sign up, ignore this email.",
    )


def signup_attempt(login_link: str, reset_link: str) -> Email:
    return Email(
        "signup_attempt",
        "Someone tried to sign up with your address",
        "Someone tried to create an account with this email address, which already has one.\n\n"
        f"If it was you, log in here: {login_link}\n"
        f"Forgot your password? Reset it here: {reset_link}\n\n"
        "If it was not you, you can ignore this email; your account has not changed.",
    )


def reset_password(link: str) -> Email:
    return Email(
        "reset_password",
        "Reset your password",
        f"Open this link to choose a new password:\n\n{link}\n\n"
        "The link works once and expires in one hour. If you did not ask for it, ignore this "
        "email: your password has not changed.",
    )


def password_changed() -> Email:
    return Email(
        "password_changed",
        "Your password was changed",
        "Your password was just reset and every device was signed out.\n\n"
        "If this was not you, reset your password again at once and contact us.",
    )
