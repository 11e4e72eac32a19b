"""``flask billing ...``: demo catalogue, plan refresh, reconcile, event replay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from flask import Flask, current_app
from sqlalchemy import select
from tqdm import tqdm

from paywall.billing.gateway import idempotency_key
from paywall.billing.models import StripeEvent
from paywall.billing.services import billing_service
from paywall.billing.webhooks import (
    EXPIRED,
    FAILED,
    IGNORED,
    ORPHANED,
    PROCESSED,
    REJECTED,
    replay,
    replay_orphans,
)
from paywall.extensions import db

EVENT_STATUSES = [FAILED, ORPHANED, REJECTED, EXPIRED, PROCESSED, IGNORED]

#: The demo catalogue: finance would create the same in the Stripe dashboard.
DEMO_CATALOGUE: list[dict[str, Any]] = [
    {
        "product": "Premium",
        "description": "Every article, notifications, up to 5 devices at once.",
        "metadata": {"entitlements": "premium_content,notifications", "max_devices": "5"},
        "prices": [
            {"lookup_key": "premium_monthly", "unit_amount": 900, "interval": "month"},
            {"lookup_key": "premium_yearly", "unit_amount": 9000, "interval": "year"},
        ],
    },
    {
        "product": "Premium Solo",
        "description": "Every article on up to 2 devices.",
        "metadata": {"entitlements": "premium_content", "max_devices": "2"},
        "prices": [{"lookup_key": "solo_monthly", "unit_amount": 500, "interval": "month"}],
    },
]


def init_app(app: Flask) -> None:
    @app.cli.group("billing")
    def billing_cli() -> None:
        """Stripe catalogue, reconcile and webhook replay."""

    @billing_cli.command("create-demo-catalogue")
    def create_demo_catalogue() -> None:
        """Create the demo products and prices in the configured Stripe account (stand-in or a
        test-mode account). Safe to run twice: existing lookup keys are left alone."""
        billing = billing_service()
        gateway = billing.gateway
        for entry in DEMO_CATALOGUE:
            product_id = None
            for price in entry["prices"]:
                if gateway.find_price(price["lookup_key"]) is not None:
                    click.echo(f"exists   {price['lookup_key']}")
                    continue
                if product_id is None:
                    product = gateway.create_product(
                        {
                            "name": entry["product"],
                            "description": entry["description"],
                            "metadata": entry["metadata"],
                        },
                        idempotency_key("demo-product", entry["product"]),
                    )
                    product_id = product["id"]
                gateway.create_price(
                    {
                        "product": product_id,
                        "currency": "usd",
                        "unit_amount": price["unit_amount"],
                        "recurring": {"interval": price["interval"]},
                        "lookup_key": price["lookup_key"],
                        "nickname": price["lookup_key"],
                    },
                    idempotency_key("demo-price", price["lookup_key"]),
                )
                click.echo(f"created  {price['lookup_key']}")
        billing.sync_plans()
        db.session.commit()

    @billing_cli.command("sync-plans")
    def sync_plans() -> None:
        """Refresh the local plan cache from Stripe."""
        plans = billing_service().sync_plans()
        db.session.commit()
        for plan in plans:
            click.echo(f"{plan.lookup_key or '-':24} {plan.price_id} active={plan.active}")

    @billing_cli.command("reconcile")
    def reconcile() -> None:
        """Re-read every customer's subscriptions from Stripe and correct local state, then
        re-apply events that were stored before their owner was known."""
        billing = billing_service()
        changes = billing.reconcile(
            progress=lambda items: tqdm(
                items, desc="customers", unit="customer", disable=len(list(items)) < 20
            )
        )
        ttl = timedelta(days=float(current_app.config["ORPHAN_EVENT_TTL_DAYS"]))
        results = replay_orphans(db.session, billing, ttl)
        db.session.commit()
        for line in changes:
            click.echo(f"changed  {line}")
        applied = [event_id for event_id, outcome in results if outcome == "processed"]
        for event_id in applied:
            click.echo(f"applied  {event_id}")
        expired = [event_id for event_id, outcome in results if outcome == EXPIRED]
        for event_id in expired:
            click.echo(f"expired  {event_id}")
        click.echo(
            f"{len(changes)} subscription(s) corrected, {len(applied)} event(s) applied, "
            f"{len(expired)} orphaned event(s) expired"
        )

    @billing_cli.command("events")
    @click.option(
        "--status",
        "statuses",
        multiple=True,
        default=(REJECTED,),
        type=click.Choice(EVENT_STATUSES),
        help="Which stored events to list (default: rejected, the ones never retried).",
    )
    def list_events(statuses: tuple[str, ...]) -> None:
        """List stored webhook events by status, oldest first, with the last error."""
        rows = db.session.scalars(
            select(StripeEvent)
            .where(StripeEvent.status.in_(statuses))
            .order_by(StripeEvent.received_at)
        ).all()
        for row in rows:
            click.echo(
                f"{row.id} {row.type} {row.status} received={row.received_at.isoformat()} "
                f"attempts={row.attempts} {row.error or ''}".rstrip()
            )
        click.echo(f"{len(rows)} event(s)")

    @billing_cli.command("replay-events")
    @click.option(
        "--status",
        "statuses",
        multiple=True,
        default=("failed",),
        type=click.Choice(EVENT_STATUSES),
        help="Which stored events to apply again (default: failed).",
    )
    def replay_events(statuses: tuple[str, ...]) -> None:
        """Apply stored webhook events again (they are idempotent)."""
        billing = billing_service()
        results = replay(db.session, billing, statuses=statuses)
        db.session.commit()
        for event_id, outcome in results:
            click.echo(f"{event_id} {outcome}")
        click.echo(f"{len(results)} event(s) replayed")
