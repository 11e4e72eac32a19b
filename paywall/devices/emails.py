"""The text of the emails about devices: a sign-in from a new device, a device signed out at
the limit."""

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
