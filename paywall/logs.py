"""JSON logs, one object a line, each carrying the request id returned in ``X-Request-ID``."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or ``-`` outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(app: Flask) -> None:
    """Send the app's and the service's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger("paywall")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    root.propagate = bool(app.testing)  # let pytest's caplog see records in tests
    access = logging.getLogger("paywall.access")

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        access.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2)
                if started
                else None,
            },
        )
        return response


# -- gunicorn's access log -----------------------------------------------------------------
#: Query parameters whose values never reach a log: links and return URLs carry credentials
#: (``?token=`` in reset, verification and unsubscribe links; Checkout's ``session_id=``).
SECRET_PARAMETERS = re.compile(
    r"(?i)([?&](?:[\w.-]*token[\w.-]*|session_id|code|key|secret|password|signature|sig)=)"
    r"[^&#\s\"]*"
)
REDACTED = "[redacted]"


def redact_url(text: str) -> str:
    """``text`` (a URL, a request line, a query string) with credential values replaced."""
    return SECRET_PARAMETERS.sub(r"\1" + REDACTED, text)


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover - gunicorn is only needed to serve
    _GunicornLogger = object


class GunicornLogger(_GunicornLogger):  # type: ignore[misc,valid-type]
    """gunicorn's logger with tokens removed from the access log's request line, query string
    and Referer (issue 11). Use it with ``--logger-class paywall.logs.GunicornLogger`` or
    ``logger_class = "paywall.logs.GunicornLogger"`` in a gunicorn config file."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():  # the request line, the Referer, any header
            if isinstance(value, str) and "=" in value:
                atoms[name] = redact_url(value)
        if atoms.get("q"):  # the bare query string: its first parameter has no "?" before it
            atoms["q"] = redact_url("?" + environ.get("QUERY_STRING", ""))[1:]
        return atoms
