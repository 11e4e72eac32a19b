"""The only module that talks to Stripe (or the local stand-in: same SDK, another base URL).

Everything it returns is a plain ``dict`` in Stripe's JSON shape, so the rest of the service
never handles SDK objects. Errors come out as two typed errors the API maps to 503 and 502.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import stripe

log = logging.getLogger(__name__)

#: Tag on every object this service creates, so webhooks can tell ours from the rest.
OWNER_KEY = "paywall_account_id"

#: The Stripe API version this code is written for (periods on subscription items, invoices
#: linked through ``parent``, payments through invoice_payments, Checkout ``ui_mode:
#: hosted_page``). Sent on every request, so an SDK upgrade never changes the shapes we read;
#: give the webhook endpoint the same version. https://docs.stripe.com/api/versioning
API_VERSION = "2026-03-25.dahlia"


class StripeUnavailable(Exception):
    """Stripe could not be reached or failed on its side; retrying may work."""


class StripeRefused(Exception):
    """Stripe refused the request (bad parameters, missing object)."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    @property
    def permanent(self) -> bool:
        """Asking again cannot succeed: the object is gone or the request is invalid. (401,
        403 and 409 are not: a key or a lock can change.)"""
        return self.status in (400, 404)


class SignatureInvalid(Exception):
    """A webhook's ``Stripe-Signature`` did not verify against any configured secret."""


def _signed_timestamps(header: str) -> list[int]:
    """The ``t=`` values of a ``Stripe-Signature`` header (unparseable ones are left to the
    SDK, which refuses them)."""
    stamps = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            stamps.append(int(value))
    return stamps


def idempotency_key(*parts: str) -> str:
    """A key derived from the business operation: the same operation, the same key."""
    return "paywall-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:48]


class StripeGateway:
    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        timeout: float = 20,
        max_network_retries: int = 2,
        api_version: str = API_VERSION,
    ) -> None:
        base = {"api": api_base} if api_base else None
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=api_version,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    # -- catalogue -------------------------------------------------------------------------
    def list_recurring_prices(self) -> Iterator[dict[str, Any]]:
        """Every active recurring price, with its product expanded."""
        page = self._call(
            self.client.v1.prices.list,
            {"active": True, "type": "recurring", "expand": ["data.product"], "limit": 100},
        )
        for price in page.auto_paging_iter():
            yield price.to_dict()

    def find_price(self, lookup_key: str) -> dict[str, Any] | None:
        page = self._call(
            self.client.v1.prices.list,
            {"lookup_keys": [lookup_key], "expand": ["data.product"], "limit": 1},
        )
        return page.data[0].to_dict() if page.data else None

    def create_product(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        return self._create(self.client.v1.products.create, params, key)

    def create_price(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        return self._create(self.client.v1.prices.create, params, key)

    def update_product(self, product_id: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._call(self.client.v1.products.update, product_id, params).to_dict()

    # -- customers and sessions --------------------------------------------------------------
    def create_customer(self, account_id: str, email: str) -> dict[str, Any]:
        return self._create(
            self.client.v1.customers.create,
            {"email": email, "metadata": {OWNER_KEY: account_id}},
            idempotency_key("customer", account_id),
        )

    def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.customers.retrieve, customer_id).to_dict()

    def create_checkout_session(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        return self._create(self.client.v1.checkout.sessions.create, params, key)

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.checkout.sessions.retrieve, session_id).to_dict()

    def create_portal_session(
        self, customer_id: str, return_url: str, flow_data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``flow_data`` deep-links one portal page (update card, confirm a plan change):
        https://docs.stripe.com/customer-management/portal-deep-links"""
        params: dict[str, Any] = {"customer": customer_id, "return_url": return_url}
        if flow_data:
            params["flow_data"] = flow_data
        return self._call(self.client.v1.billing_portal.sessions.create, params).to_dict()

    def list_invoices(self, customer_id: str, limit: int = 24) -> list[dict[str, Any]]:
        """The customer's latest invoices, newest first."""
        page = self._call(self.client.v1.invoices.list, {"customer": customer_id, "limit": limit})
        return [i.to_dict() for i in page.data]

    def retrieve_payment_method(self, payment_method_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.payment_methods.retrieve, payment_method_id).to_dict()

    def cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.subscriptions.cancel, subscription_id).to_dict()

    # -- subscriptions and payments ----------------------------------------------------------
    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.subscriptions.retrieve, subscription_id).to_dict()

    def list_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        page = self._call(
            self.client.v1.subscriptions.list,
            {"customer": customer_id, "status": "all", "limit": 100},
        )
        return [s.to_dict() for s in page.auto_paging_iter()]

    def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.charges.retrieve, charge_id).to_dict()

    def retrieve_invoice(self, invoice_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.invoices.retrieve, invoice_id).to_dict()  # type: ignore[no-any-return]

    def retrieve_dispute(self, dispute_id: str) -> dict[str, Any]:
        return self._call(self.client.v1.disputes.retrieve, dispute_id).to_dict()  # type: ignore[no-any-return]

    def invoice_payment_intents(self, invoice_id: str) -> set[str]:
        """The payment intents that paid ``invoice_id``."""
        page = self._call(self.client.v1.invoice_payments.list, {"invoice": invoice_id})
        intents = set()
        for item in page.data:
            payment = item.to_dict().get("payment") or {}
            if payment.get("payment_intent"):
                pi = payment["payment_intent"]
                intents.add(pi if isinstance(pi, str) else pi["id"])
        return intents

    # -- webhooks ----------------------------------------------------------------------------
    @staticmethod
    def verify_event(
        payload: bytes, header: str | None, secrets: list[str], tolerance: int = 300
    ) -> dict[str, Any]:
        """Verify ``Stripe-Signature`` on the raw body against each secret (rotation), then
        parse. Never parses an unverified payload."""
        if not header or not secrets:
            raise SignatureInvalid("missing Stripe-Signature header or webhook secret")
        # The SDK only refuses timestamps too far in the past; one far in the future would
        # make a captured delivery replayable for as long as it is ahead.
        if any(t > time.time() + tolerance for t in _signed_timestamps(header)):
            raise SignatureInvalid("signature timestamp is in the future")
        try:
            payload.decode("utf-8")  # the SDK decodes it and would raise on other bytes
        except UnicodeDecodeError as exc:
            raise SignatureInvalid("payload is not UTF-8") from exc
        for secret in secrets:
            try:
                stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
            except (stripe.SignatureVerificationError, ValueError):
                continue
            try:
                event = json.loads(payload)
            except ValueError as exc:
                raise SignatureInvalid("signed payload is not JSON") from exc
            if not isinstance(event, dict) or not isinstance(event.get("id"), str):
                raise SignatureInvalid("signed payload is not an event")
            return event
        raise SignatureInvalid("no configured secret verifies this signature")

    # -- plumbing ----------------------------------------------------------------------------
    def _create(self, method: Any, params: dict[str, Any], key: str) -> dict[str, Any]:
        return self._call(method, params, {"idempotency_key": key}).to_dict()  # type: ignore[no-any-return]

    @staticmethod
    def _call(method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            log.warning("stripe unreachable", extra={"error": str(exc)})
            raise StripeUnavailable(str(exc)) from exc
        except stripe.APIError as exc:
            log.warning("stripe error", extra={"error": str(exc)})
            raise StripeUnavailable(str(exc)) from exc
        except stripe.StripeError as exc:
            if getattr(exc, "http_status", None) and exc.http_status >= 500:  # type: ignore[operator]
                raise StripeUnavailable(str(exc)) from exc
            raise StripeRefused(
                str(exc.user_message or exc), getattr(exc, "code", None), exc.http_status
            ) from exc
