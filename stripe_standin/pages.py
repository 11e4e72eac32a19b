"""The pages a customer sees: hosted Checkout, the billing portal and hosted invoices.

Plain HTML with stable ids for browser tests: ``#card-number``, ``#pay``, ``#error``,
``#cancel``, ``#resume-renewal``, ``#cancel-now``, ``#switch-<lookup_key>``, ``#return``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, redirect, render_template_string, request

from . import billing, objects
from .errors import StripeError
from .store import Store

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · Stripe stand-in</title>
<style>
body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#222}
.box{border:1px solid #ddd;border-radius:8px;padding:1rem;margin:1rem 0}
label{display:block;margin:.6rem 0 .2rem}
input[type=text],input[type=email]{width:100%;padding:.5rem;box-sizing:border-box}
button{padding:.5rem 1rem;margin:.3rem .3rem .3rem 0;cursor:pointer}
#error{color:#b00020;font-weight:600} #notice{color:#05620a}
dt{font-weight:600} dd{margin:0 0 .5rem 0}
</style></head><body>
<p><small>Stripe stand-in (test mode)</small></p>
<h1>{{ title }}</h1>
{% if error %}<p id="error" role="alert">{{ error }}</p>{% endif %}
{% if notice %}<p id="notice" role="status">{{ notice }}</p>{% endif %}
{{ body|safe }}
</body></html>"""

CHECKOUT = """
<div class="box" id="summary">
{% for item in items %}
  <p><span class="plan-name" id="plan-name">{{ item.name }}</span>:
     <span class="amount" id="amount">{{ item.amount }}</span> {{ item.interval }}
     {% if item.quantity > 1 %}× {{ item.quantity }}{% endif %}</p>
{% endfor %}
{% if trial_days %}<p id="trial">{{ trial_days }}-day free trial, then the price above</p>
{% endif %}
<p>Total due today: <strong id="total">{{ total }}</strong></p>
</div>
{% if open %}
<form method="post" id="checkout-form">
  <label for="email">Email</label>
  <input type="email" id="email" name="email" value="{{ email or '' }}"
         {% if email_locked %}readonly{% endif %}>
  <label for="name">Name on card</label>
  <input type="text" id="name" name="name" autocomplete="cc-name">
  <label for="card-number">Card number</label>
  <input type="text" id="card-number" name="card_number" inputmode="numeric"
         autocomplete="cc-number" placeholder="4242 4242 4242 4242" required>
  {% if promotion_codes %}<label for="promotion-code">Promotion code</label>
  <input type="text" id="promotion-code" name="promotion_code" autocomplete="off">{% endif %}
  <button type="submit" id="pay">{{ 'Start trial' if trial_days else 'Subscribe' }}</button>
</form>
{% endif %}
{% if cancel_url %}<p><a id="cancel" href="{{ cancel_url }}">Cancel</a></p>{% endif %}
{% if success_url and not open %}<p><a id="continue" href="{{ success_url }}">Continue</a></p>
{% endif %}
"""

PORTAL = """
{% if flow and flow.type == 'subscription_update_confirm' and confirm %}
<div class="box" id="confirm-update"><h2>Confirm your new plan</h2>
<p id="confirm-plan">{{ confirm.label }}</p>
<form method="post">
  <input type="hidden" name="subscription" value="{{ sub.id }}">
  <input type="hidden" name="action" value="switch">
  <input type="hidden" name="price" value="{{ confirm.id }}">
  <button type="submit" id="confirm-switch">Confirm</button>
</form></div>
{% endif %}
{% if flow and flow.type == 'payment_method_update' and sub %}
<div class="box" id="payment-method-update"><h2>Update payment method</h2>
{% if card %}<p id="current-card">{{ card.card.brand|title }} ending in {{ card.card.last4 }}</p>
{% endif %}
<form method="post">
  <input type="hidden" name="subscription" value="{{ sub.id }}">
  <input type="hidden" name="action" value="update_card">
  <label for="card-number">Card number</label>
  <input type="text" id="card-number" name="card_number" inputmode="numeric" required>
  <button type="submit" id="save-card">Save card</button>
</form></div>
{% endif %}
{% if sub %}
<div class="box" id="subscription" data-subscription-id="{{ sub.id }}">
<dl>
  <dt>Plan</dt><dd id="plan">{{ plan }}</dd>
  <dt>Status</dt><dd id="status">{{ sub.status }}</dd>
  <dt>Current period ends</dt><dd id="period-end">{{ period_end }}</dd>
  <dt>Cancels at period end</dt>
  <dd id="cancel-at-period-end">{{ 'yes' if sub.cancel_at_period_end else 'no' }}</dd>
</dl>
<form method="post">
  <input type="hidden" name="subscription" value="{{ sub.id }}">
  {% if sub.cancel_at_period_end %}
  <button type="submit" name="action" value="resume_renewal" id="resume-renewal">
    Renew plan</button>
  {% else %}
  <button type="submit" name="action" value="cancel" id="cancel">Cancel plan</button>
  {% endif %}
  <button type="submit" name="action" value="cancel_now" id="cancel-now">Cancel now</button>
</form>
</div>
{% if switches %}
<div class="box" id="switch-plan"><h2>Switch plan</h2>
<form method="post">
  <input type="hidden" name="subscription" value="{{ sub.id }}">
  <input type="hidden" name="action" value="switch">
  {% for option in switches %}
  <button type="submit" name="price" value="{{ option.id }}" id="switch-{{ option.key }}">
    {{ option.label }}</button>
  {% endfor %}
</form></div>
{% endif %}
{% else %}
<p id="no-subscription">You have no active subscription.</p>
{% endif %}
{% if return_url %}<p><a id="return" href="{{ return_url }}">Return</a></p>{% endif %}
"""

INVOICE = """
<div class="box">
<dl>
  <dt>Invoice</dt><dd id="number">{{ invoice.number }}</dd>
  <dt>Amount due</dt><dd id="amount">{{ amount }}</dd>
  <dt>Status</dt><dd id="status">{{ invoice.status }}</dd>
</dl>
{% if invoice.status == 'open' %}
<form method="post">
  <label for="card-number">Card number</label>
  <input type="text" id="card-number" name="card_number" required>
  <button type="submit" id="pay">Pay</button>
</form>
{% endif %}
</div>
"""


def _page(
    title: str,
    body: str,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    **context: Any,
) -> Response:
    inner = render_template_string(body, **context)
    html = render_template_string(LAYOUT, title=title, body=inner, error=error, notice=notice)
    return Response(html, status=status, mimetype="text/html")


def _date(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _price_label(store: Store, price: dict[str, Any]) -> tuple[str, str, str]:
    product = store.get("product", price["product"]) or {"name": price["id"]}
    name = product["name"] + (f" ({price['nickname']})" if price["nickname"] else "")
    amount = objects.format_amount(price["unit_amount"], price["currency"])
    return name, amount, objects.interval_label(price["recurring"])


def create_pages_blueprint(store: Store) -> Blueprint:
    bp = Blueprint("stripe_pages", __name__)

    # -- checkout ----------------------------------------------------------------------------
    def checkout_page(
        session: dict[str, Any], status: int = 200, error: str | None = None
    ) -> Response:
        data = store.checkout_data.get(session["id"], {})
        items = []
        for line in data.get("line_items", []):
            name, amount, interval = _price_label(store, line["price"])
            items.append(
                {"name": name, "amount": amount, "interval": interval, "quantity": line["quantity"]}
            )
        customer = store.get("customer", session["customer"] or "")
        email = session["customer_email"] or (customer or {}).get("email")
        if session["status"] == "complete" and error is None:
            error = "This Checkout Session is already complete."
        if session["status"] == "expired" and error is None:
            error = "This Checkout Session has expired."
        success_url = session["success_url"]
        if success_url:
            success_url = success_url.replace("{CHECKOUT_SESSION_ID}", session["id"])
        return _page(
            "Subscribe",
            CHECKOUT,
            status=status,
            error=error,
            items=items,
            trial_days=data.get("subscription_data", {}).get("trial_period_days"),
            promotion_codes=bool(session["allow_promotion_codes"]),
            total=objects.format_amount(
                0
                if data.get("subscription_data", {}).get("trial_period_days")
                else session["amount_total"] or 0,
                session["currency"],
            ),
            open=session["status"] == "open",
            email=email,
            email_locked=bool(customer),
            cancel_url=session["cancel_url"] if session["status"] == "open" else None,
            success_url=success_url if session["status"] == "complete" else None,
        )

    def find_session(session_id: str) -> dict[str, Any] | None:
        with store.transaction():
            session = store.get("checkout.session", session_id)
            if session and session["status"] == "open" and session["expires_at"] <= store.now():
                billing.expire_session(store, session)
            return session

    @bp.get("/checkout/<session_id>")
    def checkout(session_id: str) -> Response:
        session = find_session(session_id)
        if session is None:
            return _page("Not found", "", 404, "No such Checkout Session.")
        return checkout_page(session, 410 if session["status"] == "expired" else 200)

    @bp.post("/checkout/<session_id>")
    def checkout_submit(session_id: str) -> Any:
        session = find_session(session_id)
        if session is None:
            return _page("Not found", "", 404, "No such Checkout Session.")
        try:
            with store.transaction():
                billing.complete_checkout(
                    store,
                    session_id,
                    request.form.get("card_number", ""),
                    email=request.form.get("email") or None,
                    name=request.form.get("name") or None,
                    promotion_code=request.form.get("promotion_code") or None,
                )
        except StripeError as error:
            return checkout_page(session, error.status, error.message)
        target = session["success_url"]
        if not target:
            return _page("Thanks for subscribing", "", notice="Your payment succeeded.")
        return redirect(target.replace("{CHECKOUT_SESSION_ID}", session_id), code=303)

    # -- billing portal ----------------------------------------------------------------------
    def current_subscription(customer_id: str) -> dict[str, Any] | None:
        for sub in store.all("subscription"):
            if sub["customer"] == customer_id and sub["status"] not in billing.ENDED:
                return sub
        return None

    @bp.get("/portal/<session_id>")
    def portal(session_id: str) -> Response:
        session = store.get("billing_portal.session", session_id)
        if session is None:
            return _page("Not found", "", 404, "No such billing portal session.")
        with store.lock:
            sub = current_subscription(session["customer"])
            flow = session.get("flow") or None
            context: dict[str, Any] = {
                "sub": sub,
                "return_url": session["return_url"],
                "flow": flow,
                "card": store.get(
                    "payment_method", (sub or {}).get("default_payment_method") or ""
                ),
            }
            confirm = (flow or {}).get("subscription_update_confirm") or {}
            if confirm.get("items"):
                target = store.require("price", confirm["items"][0]["price"])
                context["confirm"] = {
                    "id": target["id"],
                    "label": "{} — {} {}".format(*_price_label(store, target)),
                }
            if sub is not None:
                current = store.require("price", sub["items"]["data"][0]["price"])
                name, amount, interval = _price_label(store, current)
                context["plan"] = f"{name} — {amount} {interval}"
                context["period_end"] = _date(billing.period_end(sub))
                context["switches"] = [
                    {
                        "id": price["id"],
                        "key": price["lookup_key"] or price["id"],
                        "label": "{} — {} {}".format(*_price_label(store, price)),
                    }
                    for price in reversed(store.all("price"))
                    if price["active"]
                    and price["type"] == "recurring"
                    and price["currency"] == sub["currency"]
                    and price["id"] != current["id"]
                ]
        notice = {
            "cancel": "Your plan will be canceled at the end of the period.",
            "resume_renewal": "Your plan will renew.",
            "cancel_now": "Your plan was canceled.",
            "switch": "Your plan was changed.",
            "update_card": "Your payment method was updated.",
        }.get(request.args.get("done", ""))
        return _page("Manage your subscription", PORTAL, notice=notice, **context)

    @bp.post("/portal/<session_id>")
    def portal_action(session_id: str) -> Any:
        session = store.get("billing_portal.session", session_id)
        if session is None:
            return _page("Not found", "", 404, "No such billing portal session.")
        action = request.form.get("action", "")
        try:
            with store.transaction():
                sub = store.require("subscription", request.form.get("subscription", ""))
                if sub["customer"] != session["customer"]:
                    raise StripeError("That subscription belongs to another customer.", status=403)
                if action in ("cancel", "resume_renewal"):
                    with billing.updating(store, sub):
                        billing.set_cancel_at_period_end(store, sub, action == "cancel")
                elif action == "cancel_now":
                    billing.cancel_subscription(store, sub)
                elif action == "switch":
                    price = store.require("price", request.form.get("price", ""), "price")
                    billing.change_plan(store, sub, price)
                elif action == "update_card":
                    billing.update_payment_method(store, sub, request.form.get("card_number", ""))
                else:
                    raise StripeError(f"Unknown action {action!r}.")
        except StripeError as error:
            return _page("Manage your subscription", "", error.status, error.message)
        after = (session.get("flow") or {}).get("after_completion") or {}
        if after.get("type") == "redirect" and (after.get("redirect") or {}).get("return_url"):
            return redirect(after["redirect"]["return_url"], code=303)
        return redirect(f"/portal/{session_id}?done={action}", code=303)

    # -- hosted invoice page -----------------------------------------------------------------
    def invoice_page(
        invoice: dict[str, Any],
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
    ) -> Response:
        amount = objects.format_amount(invoice["amount_due"], invoice["currency"])
        return _page("Invoice", INVOICE, status, error, notice, invoice=invoice, amount=amount)

    @bp.get("/invoices/<invoice_id>")
    def hosted_invoice(invoice_id: str) -> Response:
        invoice = store.get("invoice", invoice_id)
        if invoice is None:
            return _page("Not found", "", 404, "No such invoice.")
        return invoice_page(invoice)

    @bp.get("/invoices/<invoice_id>/pdf")
    def invoice_pdf(invoice_id: str) -> Response:
        invoice = store.get("invoice", invoice_id)
        if invoice is None or not invoice.get("invoice_pdf"):
            return _page("Not found", "", 404, "No such invoice.")
        amount = objects.format_amount(invoice["amount_due"], invoice["currency"])
        text = f"Invoice {invoice['number']}  {amount}  {invoice['status']}"
        return Response(_one_line_pdf(text), mimetype="application/pdf")

    @bp.post("/invoices/<invoice_id>")
    def hosted_invoice_pay(invoice_id: str) -> Response:
        invoice = store.get("invoice", invoice_id)
        if invoice is None:
            return _page("Not found", "", 404, "No such invoice.")
        try:
            with store.transaction():
                if invoice["status"] != "open":
                    raise StripeError("This invoice is not open.", status=409)
                outcome = billing.card_outcome(request.form.get("card_number", ""))
                billing.pay_invoice(store, invoice, outcome)
        except StripeError as error:
            return invoice_page(
                store.get("invoice", invoice_id) or invoice, error.status, error.message
            )
        return invoice_page(invoice, notice="Payment succeeded.")

    return bp


def _one_line_pdf(text: str) -> bytes:
    """A valid one-page PDF showing ``text`` (enough for a link to open a document)."""
    safe = text.encode("latin-1", "replace").replace(b"\\", b"").replace(b"(", b"[")
    safe = safe.replace(b")", b"]")
    stream = b"BT /F1 14 Tf 72 720 Td (" + safe + b") Tj ET"
    parts = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(parts, 1):
        offsets.append(len(out))
        out += str(number).encode() + b" 0 obj\n" + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 " + str(len(parts) + 1).encode() + b"\n0000000000 65535 f \n"
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += b"trailer\n<< /Size " + str(len(parts) + 1).encode() + b" /Root 1 0 R >>\n"
    return out + b"startxref\n" + str(xref).encode() + b"\n%%EOF\n"
