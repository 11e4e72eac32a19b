"""``python -m stripe_standin --port 12111 --api-key sk_test_... --webhook-secret whsec_...``"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .server import StandIn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stripe_standin",
        description="Serve a local stand-in for Stripe's API (test mode, in memory).",
    )
    parser.add_argument("--host", default=os.environ.get("STANDIN_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("STANDIN_PORT", "12111")))
    parser.add_argument(
        "--api-key",
        default=os.environ.get("STANDIN_API_KEY"),
        help="secret key clients must send (env STANDIN_API_KEY)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("STANDIN_WEBHOOK_SECRET"),
        help="whsec_... used to sign events (env STANDIN_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--webhook-url",
        default=os.environ.get("STANDIN_WEBHOOK_URL") or None,
        help="where to POST events (env STANDIN_WEBHOOK_URL); omit to only queue them",
    )
    parser.add_argument(
        "--public-url",
        default=os.environ.get("STANDIN_PUBLIC_URL") or None,
        help="base URL for Checkout/portal links if browsers reach the stand-in elsewhere",
    )
    args = parser.parse_args(argv)
    if not args.api_key or not args.webhook_secret:
        parser.error(
            "--api-key and --webhook-secret (or STANDIN_API_KEY/STANDIN_WEBHOOK_SECRET)"
            " are required"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    standin = StandIn(
        args.api_key,
        args.webhook_secret,
        webhook_url=args.webhook_url,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
    )
    standin.start()
    logging.getLogger("stripe_standin").info(
        "Stripe stand-in on %s (webhooks: %s)", standin.url, args.webhook_url or "queued only"
    )
    try:
        standin.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
