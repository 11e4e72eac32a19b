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


def confirm_new_email(link: str) -> Email:
    return Email(
        "confirm_new_email",
        "Confirm your new email address",
        f"Open this link to make this address the one you sign in with:\n\n{link}\n\n"
        "The link works once and expires in 48 hours. If you did not ask for it, ignore this "
        "email: nothing changes.",
    )


def email_change_requested(new_email: str, reset_link: str) -> Email:
    return Email(
        "email_change_requested",
        "A change of your email address was requested",
        f"Someone signed in to your account asked to change its address to {new_email}. "
        "Nothing changes until the link sent there is opened.\n\n"
        f"If this was not you, change your password now: {reset_link}",
    )


def email_changed(new_email: str) -> Email:
    return Email(
        "email_changed",
        "Your email address was changed",
        f"Your account now signs in with {new_email}. This address will get no more emails "
        "about it.\n\nIf this was not you, contact us at once.",
    )


def new_address_taken(login_link: str) -> Email:
    return Email(
        "email_change_taken",
        "This address already has an account",
        "Someone asked to move an account to this address, but it already has one, so "
        f"nothing changed. Log in here: {login_link}",
    )


def account_deleted() -> Email:
    return Email(
        "account_deleted",
        "Your account was deleted",
        "Your account was deleted as you asked: your subscription is canceled, every device "
        "is signed out and your personal data is erased. Invoices stay with our payment "
        "provider for as long as tax law requires.",
    )
