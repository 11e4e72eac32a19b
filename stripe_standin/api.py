"""The ``/v1`` REST API: auth, idempotency keys, injected faults, request log, dispatch.

Every request is answered the way Stripe answers: JSON bodies, Stripe's error shape, a
``Request-Id`` header, ``Idempotent-Replayed: true`` on replays.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, request

from . import routes_billing, routes_catalog, routes_customers, routes_discounts, routes_payments
from .errors import StripeError, api_error
from .params import parse_form
from .render import expand
from .routing import Route
from .store import RequestRecord, Store, StoredResponse, current_request, new_id

log = logging.getLogger("stripe_standin.api")

ROUTES: list[Route] = [
    *routes_catalog.routes,
    *routes_customers.routes,
    *routes_billing.routes,
    *routes_payments.routes,
    *routes_discounts.routes,
]
ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2).encode("utf-8")


def _mask(key: str) -> str:
    return f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else "*" * len(key)


class Gateway:
    """Wraps each route handler with Stripe's request semantics."""

    def __init__(self, store: Store, api_key: str, stopping: threading.Event) -> None:
        self.store = store
        self.api_key = api_key
        self.stopping = stopping

    def blueprint(self) -> Blueprint:
        bp = Blueprint("stripe_api", __name__, url_prefix="/v1")
        for index, route in enumerate(ROUTES):
            bp.add_url_rule(
                route.rule,
                endpoint=f"r{index}_{route.handler.__name__}",
                view_func=self._view(route),
                methods=list(route.methods),
            )
        bp.add_url_rule(
            "/<path:rest>",
            endpoint="unrecognized",
            view_func=self._unrecognized,
            methods=ALL_METHODS,
        )
        return bp

    def _view(self, route: Route) -> Any:
        def view(**kwargs: str) -> Response:
            return self.handle(route, kwargs)

        view.__name__ = route.handler.__name__
        return view

    def _unrecognized(self, rest: str) -> Response:
        return self.handle(None, {})

    # -- the request pipeline ----------------------------------------------------------------
    def handle(self, route: Route | None, kwargs: dict[str, str]) -> Response:
        method = request.method
        idempotency_key = request.headers.get("Idempotency-Key") if method == "POST" else None
        record = RequestRecord(
            method=method,
            path=request.path,
            query=request.query_string.decode("latin-1"),
            idempotency_key=idempotency_key,
            request_id=new_id("req_", 14),
            time=time.time(),
            stripe_version=request.headers.get("Stripe-Version"),
        )
        with self.store.lock:
            self.store.requests.append(record)
        token = current_request.set((record.request_id, idempotency_key))
        try:
            response, lose_for = self._answer(route, kwargs, record)
        finally:
            current_request.reset(token)
        record.status = response.status_code
        response.headers["Request-Id"] = record.request_id
        response.headers["Stripe-Version"] = self.store.api_version
        if idempotency_key:
            response.headers["Idempotency-Key"] = idempotency_key
        if record.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        if lose_for:
            # The work is done and recorded; the answer arrives too late for the client.
            self.stopping.wait(lose_for)
        return response

    def _answer(
        self, route: Route | None, kwargs: dict[str, str], record: RequestRecord
    ) -> tuple[Response, float]:
        fault = self.store.take_fault(record.method, record.path)
        if fault is not None:
            record.fault = fault.mode
            if fault.mode == "down":
                return self._error(api_error(503, "The stand-in is down (injected fault).")), 0
            if fault.mode == "error":
                return self._error(api_error(fault.status)), 0
        lose_for = fault.delay if fault is not None and fault.mode == "lose_response" else 0.0

        auth_error = self._check_auth()
        if auth_error is not None:
            return self._error(auth_error), lose_for
        version_error = self._check_version(record.stripe_version)
        if version_error is not None:
            return self._error(version_error), lose_for
        if route is None:
            return self._error(
                StripeError(
                    f"Unrecognized request URL ({record.method}: {record.path}). "
                    "The Stripe stand-in does not implement this endpoint.",
                    status=404,
                )
            ), lose_for

        pairs = list(request.args.items(multi=True))
        if record.method == "POST":
            pairs += list(request.form.items(multi=True))
        fingerprint = (record.method, record.path, tuple(sorted(pairs)))
        key = record.idempotency_key
        with self.store.lock:
            if key:
                stored = self.store.stored_response(key)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        return self._error(self._idempotency_mismatch(key)), lose_for
                    record.replayed = True
                    return self._response(stored.status, stored.body), lose_for
            crash = fault is not None and fault.mode == "crash"
            status, body, executed = self._run(route, pairs, kwargs, crash=crash)
            # Like Stripe: once execution began, every answer (success, card error, 500) is
            # what the key returns from now on; a request refused by validation is not.
            # https://docs.stripe.com/api/idempotent_requests
            if key and executed:
                self.store.idempotency[key] = StoredResponse(
                    fingerprint, status, body, self.store.now()
                )
        return self._response(status, body), lose_for

    def _run(
        self,
        route: Route,
        pairs: Iterable[tuple[str, str]],
        kwargs: dict[str, str],
        crash: bool = False,
    ) -> tuple[int, bytes, bool]:
        """(status, body, whether the handler began executing). ``crash``: fail after the
        handler ran, as a Stripe internal error would (its changes are undone)."""
        try:
            params = parse_form(pairs)
        except StripeError as error:
            return error.status, _json(error.to_dict()), False
        try:
            expand_paths = params.pop("expand", None)
            if request.method == "GET":
                result = route.handler(self.store, params, **kwargs)
            else:
                with self.store.transaction():
                    result = route.handler(self.store, params, **kwargs)
                    if crash:
                        raise RuntimeError("injected crash after execution began")
            return 200, _json(expand(self.store, result, expand_paths)), True
        except StripeError as error:
            # A refused request (bad or unknown parameters, a missing object) changed
            # nothing and is not recorded; a card error or anything later is.
            return error.status, _json(error.to_dict()), error.type != "invalid_request_error"
        except Exception as exc:  # a stand-in bug: answer like Stripe's 500, keep serving
            log.exception("unhandled error in %s", route.handler.__name__)
            body = _json(api_error(500, f"Stand-in internal error: {exc!r}").to_dict())
            return 500, body, True

    # -- pieces ------------------------------------------------------------------------------
    def _check_auth(self) -> StripeError | None:
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        key = None
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials).decode("utf-8").split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            return StripeError(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
                status=401,
            )
        if key != self.api_key:
            return StripeError(f"Invalid API Key provided: {_mask(key)}", status=401)
        return None

    def _check_version(self, requested: str | None) -> StripeError | None:
        """Only the pinned version's major is spoken; see ``store.API_VERSION``."""
        if requested is None or requested == self.store.api_version:
            return None
        major = self.store.api_version.rsplit(".", 1)[-1]
        if requested.rsplit(".", 1)[-1] == major and "." in requested:
            return None
        return StripeError(
            f"Invalid Stripe API version: {requested}. The stand-in only answers in "
            f"{self.store.api_version} (and other {major} releases, with the same shapes).",
            code="api_version_unsupported",
            param="Stripe-Version",
        )

    @staticmethod
    def _idempotency_mismatch(key: str) -> StripeError:
        return StripeError(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request.",
            type="idempotency_error",
        )

    @staticmethod
    def _response(status: int, body: bytes) -> Response:
        return Response(body, status=status, mimetype="application/json")

    def _error(self, error: StripeError) -> Response:
        return self._response(error.status, _json(error.to_dict()))
