"""Prometheus metrics: ``GET /metrics`` in the exposition format, for an operator's scraper.

Two kinds of numbers, kept apart on purpose:

- **Events counted by the process that saw them** (requests, logins, webhooks, jobs, emails):
  prometheus-client counters and histograms. Under gunicorn each worker is its own process, so
  with ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus-client's multiprocess mode;
  deploy/gunicorn.conf.py sets it up) every worker writes its values to files in that
  directory and a scrape of any worker adds them all up. Without it (``flask run``, tests)
  the process's own registry is read.
- **State**, read from the database at scrape time (open and failed jobs, unsent email, the
  oldest of each) and dependency health (database, rate-limit store, broker): the same answer
  from every instance, whichever host runs the workers.

Counts of things a transaction does (evictions, tokens) are added when it commits
(:func:`count_on_commit`), so a rolled-back request counts nothing. See README "Metrics".
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from paywall.clock import utcnow
from paywall.errors import error_response

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# -- what is counted ----------------------------------------------------------------------
REQUESTS = Counter(
    "paywall_http_requests_total",
    "HTTP requests answered, by Flask endpoint, method and status",
    ["endpoint", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "paywall_http_request_duration_seconds",
    "Time spent answering a request, by Flask endpoint and method",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOGINS = Counter(
    "paywall_logins_total",
    "Login attempts by outcome (success, or the error code the reader got)",
    ["outcome"],
)
EVICTIONS = Counter(
    "paywall_device_evictions_total",
    "Device sessions ended to make room under the device cap, by cause",
    ["cause"],
)
TOKENS = Counter("paywall_entitlement_tokens_issued_total", "Entitlement tokens issued")
RATE_LIMITED = Counter(
    "paywall_rate_limited_total", "Requests refused by a rate limit, by limit", ["scope"]
)
WEBHOOKS = Counter(
    "paywall_webhooks_total",
    "Stripe webhook deliveries by event type and outcome (processed, ignored, orphaned,"
    " rejected, duplicate, failed)",
    ["type", "outcome"],
)
WEBHOOKS_REFUSED = Counter(
    "paywall_webhooks_refused_total", "Webhook requests refused before any event was read"
)
JOBS = Counter(
    "paywall_jobs_total",
    "Background jobs run by a worker, by task and outcome (done, retry, failed, skipped)",
    ["task", "outcome"],
)
JOB_SECONDS = Histogram(
    "paywall_job_duration_seconds",
    "Time a worker spent on one job, by task",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)
EMAILS = Counter(
    "paywall_emails_total",
    "Email send attempts by outcome (sent; deferred: the SMTP server failed, retried later)",
    ["outcome"],
)
NOTIFICATIONS = Counter(
    "paywall_notification_deliveries_total",
    "Story notification deliveries finished, by channel and outcome",
    ["channel", "outcome"],
)


# -- counting when a transaction commits --------------------------------------------------
_PENDING = "paywall.metrics.pending"


def count_on_commit(session: Any, counter: Any, amount: float = 1.0) -> None:
    """Add ``amount`` to ``counter`` (a labelled child) once ``session`` commits."""
    session.info.setdefault(_PENDING, []).append((counter, amount))


@event.listens_for(Session, "after_commit")
def _count_after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: the outer transaction may still roll back
    for counter, amount in session.info.pop(_PENDING, ()):
        counter.inc(amount)


@event.listens_for(Session, "after_transaction_end")
def _forget_after_transaction(session: Session, transaction: Any) -> None:
    # Fires after after_commit too; a rollback, or a close without commit, drops the counts.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


# -- state read at scrape time ------------------------------------------------------------
class StateCollector(Collector):
    """Backlogs from the database and the health of each dependency, read at each scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        with self.app.app_context():
            from paywall.extensions import db

            try:
                yield from self._backlog(db.session)
                database_up = 1.0
            except SQLAlchemyError:
                log.warning("metrics: the database did not answer", exc_info=True)
                db.session.rollback()
                database_up = 0.0
            finally:
                db.session.remove()
            up = GaugeMetricFamily(
                "paywall_dependency_up",
                "1 when the service reaches the dependency, 0 when it does not",
                labels=["dependency"],
            )
            up.add_metric(["database"], database_up)
            throttle = self.app.extensions.get("paywall.throttle")
            if throttle is not None:
                state = throttle.check_store()
                up.add_metric(["rate_limit_store"], 0.0 if state == "unreachable" else 1.0)
            up.add_metric(["broker"], _broker_up(self.app))
            yield up

    def _backlog(self, session: Any) -> Iterator[Metric]:
        from paywall.outbox.models import OutboxEmail
        from paywall.queue import Job

        now = utcnow()
        open_jobs = GaugeMetricFamily(
            "paywall_queue_jobs_open", "Jobs recorded and not finished, by task", labels=["task"]
        )
        oldest = GaugeMetricFamily(
            "paywall_queue_oldest_due_job_age_seconds",
            "How long the oldest due, unfinished job has waited, by task",
            labels=["task"],
        )
        rows = session.execute(
            select(Job.task, func.count(Job.id), func.min(Job.run_after))
            .where(Job.finished_at.is_(None))
            .group_by(Job.task)
        ).all()
        for task, count, first_due in rows:
            open_jobs.add_metric([task], float(count))
            oldest.add_metric([task], max(0.0, (now - first_due).total_seconds()))
        failed = GaugeMetricFamily(
            "paywall_queue_jobs_failed",
            "Jobs given up after their retry schedule ran out (kept for QUEUE_KEEP_FINISHED_DAYS)",
            labels=["task"],
        )
        for task, count in session.execute(
            select(Job.task, func.count(Job.id)).where(Job.outcome == "failed").group_by(Job.task)
        ).all():
            failed.add_metric([task], float(count))
        unsent, first_unsent = session.execute(
            select(func.count(OutboxEmail.id), func.min(OutboxEmail.created_at)).where(
                OutboxEmail.sent_at.is_(None)
            )
        ).one()
        yield open_jobs
        yield oldest
        yield failed
        yield GaugeMetricFamily(
            "paywall_outbox_unsent_emails", "Emails recorded and not yet sent", value=unsent
        )
        age = (now - first_unsent) if first_unsent is not None else timedelta(0)
        yield GaugeMetricFamily(
            "paywall_outbox_oldest_unsent_age_seconds",
            "How long the oldest unsent email has waited",
            value=max(0.0, age.total_seconds()),
        )


def _broker_up(app: Flask) -> float:
    celery = app.extensions.get("celery")
    if celery is None or celery.conf.task_always_eager:
        return 1.0  # no broker in use
    try:
        with celery.connection_for_write(connect_timeout=1) as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
    except Exception:  # noqa: BLE001 - a scrape reports, never raises
        return 0.0
    return 1.0


# -- exposition ---------------------------------------------------------------------------
def process_registry() -> CollectorRegistry:
    """Every process's counters (multiprocess mode), or this process's own."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def exposition(app: Flask | None = None) -> bytes:
    """The page a scraper reads: the counters, then (with ``app``) the state."""
    body = generate_latest(process_registry())
    if app is not None:
        body += generate_latest(app.extensions["paywall.metrics"])
    return body


def authorised(token: str | None, header: str | None) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition; 404 unless ``PAYWALL_METRICS_TOKEN`` is set, then only with
    ``Authorization: Bearer <token>``."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        return error_response("not_found", "Not found.", 404)
    if not authorised(token, request.headers.get("Authorization")):
        response = error_response(
            "metrics_token_required", "Send Authorization: Bearer <PAYWALL_METRICS_TOKEN>.", 401
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response = Response(exposition(app), mimetype=None, content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- requests -----------------------------------------------------------------------------
def _started() -> None:
    g.metrics_started = time.perf_counter()


def _answered(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    endpoint = request.endpoint or "unmatched"  # the route's name: a bounded set of labels
    method = request.method if request.method in _METHODS else "other"
    REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
    if started is not None:
        REQUEST_SECONDS.labels(endpoint, method).observe(time.perf_counter() - started)
    return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask) -> None:
    """Count every request and serve ``/metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(app))
    app.extensions["paywall.metrics"] = registry
    app.before_request(_started)
    app.after_request(_answered)
    app.register_blueprint(bp)


# -- the worker's own page ----------------------------------------------------------------
class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


class _ThreadedServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), daemon=True
        )
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def worker_page(token: str) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """A WSGI app serving the process registry at /metrics, behind the same bearer token."""

    def page(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not authorised(token, environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"unauthorized\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [exposition()]

    return page


def serve_worker_metrics(app: Flask) -> WSGIServer | None:
    """In a Celery worker's main process: serve the worker's counters on
    ``PAYWALL_WORKER_METRICS_ADDRESS`` (``host:port``) when it and the token are set."""
    address = app.config.get("WORKER_METRICS_ADDRESS")
    token = app.config.get("METRICS_TOKEN")
    if not address or not token:
        return None
    host, _, port = str(address).rpartition(":")
    server = make_server(
        host or "127.0.0.1",
        int(port),
        worker_page(str(token)),
        server_class=_ThreadedServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    log.info("worker metrics served", extra={"address": address})
    return server


def clear_multiprocess_dir() -> None:
    """At a process group's start: remove the files of processes that no longer run (an
    earlier run's counters would otherwise be added to the new ones)."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        stem, _, ext = name.rpartition(".")
        pid = stem.rpartition("_")[2]
        if ext != "db" or not pid.isdigit() or _running(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
