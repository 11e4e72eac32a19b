"""Celery entry point: ``celery -A paywall.worker:celery worker`` (and ``beat``), configured
from the same ``PAYWALL_*`` settings as the web service."""

import os
from typing import Any

from celery.signals import worker_init

# prometheus-client writes a file per process into this directory from its first import on.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from paywall import create_app, metrics  # noqa: E402 - after the directory exists

celery = create_app().extensions["celery"]


@worker_init.connect
def _serve_metrics(**_kwargs: Any) -> None:
    # The main worker process, before its pool starts: files of processes that are gone go,
    # and PAYWALL_WORKER_METRICS_ADDRESS (if set) serves the pool's counters.
    metrics.clear_multiprocess_dir()
    metrics.serve_worker_metrics(celery.flask_app)
