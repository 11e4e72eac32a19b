"""Device sessions' background work."""

from __future__ import annotations

from datetime import timedelta

from paywall.devices.services import device_service
from paywall.extensions import db
from paywall.queue import task


@task("devices.purge", acks_late=False)
def purge(older_than_days: int = 30) -> int:
    """What ``flask devices purge`` does, on the beat schedule."""
    deleted = device_service().purge_ended(timedelta(days=older_than_days))
    db.session.commit()
    return deleted
