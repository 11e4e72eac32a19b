"""The text of the emails about devices: a sign-in from a new device, a device signed out at
the limit, a copied sign-in."""

from __future__ import annotations

from datetime import datetime

from paywall.accounts.emails import Email


def device_evicted(name: str, new_device: str, devices_link: str) -> Email:
    return Email(
        "device_evicted",
        f"{name} was signed out",
        f"{name} was signed out because {new_device} signed in while your account was at its "
        "device limit.\n\n"
        f"If that was not you, change your password and check your devices: {devices_link}",
    )


def new_device(name: str, when: datetime, devices_link: str) -> Email:
    return Email(
        "new_device",
        f"New sign-in on {name}",
        f"Your account was just signed in on {name} ({when:%Y-%m-%d %H:%M} UTC).\n\n"
        "If it was you, there is nothing to do. If not, sign that device out and change "
        f"your password: {devices_link}",
    )


def session_reused(name: str, devices_link: str) -> Email:
    return Email(
        "session_reused",
        "Your account was used on another device with a copied sign-in",
        f"Your account was used on another device with a copied sign-in: the sign-in of {name} "
        "was used again after it had been replaced, so it was copied. We signed that sign-in "
        "out on every device that had it.\n\n"
        "Sign in again. If you did not copy it, change your password and check your devices: "
        f"{devices_link}",
    )
