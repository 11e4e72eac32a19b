"""``flask entitlements ...``: signing keys for entitlement tokens."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app

from paywall.entitlements.keys import generate_pem, signing_keys


def init_app(app: Flask) -> None:
    @app.cli.group("entitlements")
    def entitlements_cli() -> None:
        """Entitlement token keys."""

    @entitlements_cli.command("new-key")
    def new_key() -> None:
        """Print a new Ed25519 private key (PKCS#8 PEM) as a JSON string, ready to add to
        PAYWALL_ENTITLEMENT_SIGNING_KEYS (see README: key rotation)."""
        pem = generate_pem()
        click.echo(json.dumps(pem))
        kid = signing_keys([pem]).keys[0].kid
        click.echo(f"kid: {kid}", err=True)

    @entitlements_cli.command("jwks")
    def jwks() -> None:
        """Print the public keys this configuration publishes."""
        keys = signing_keys(current_app.config["ENTITLEMENT_SIGNING_KEYS"])
        click.echo(json.dumps(keys.jwks(), indent=2))
