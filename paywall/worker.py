"""Celery entry point: ``celery -A paywall.worker:celery worker`` (and ``beat``), configured
from the same ``PAYWALL_*`` settings as the web service."""

from paywall import create_app

celery = create_app().extensions["celery"]
