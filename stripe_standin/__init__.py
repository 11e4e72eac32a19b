"""A local stand-in for the part of Stripe's REST API the paywall uses.

Point the real ``stripe`` SDK at it::

    standin = StandIn("sk_test_standin_...", "whsec_...").start()
    client = stripe.StripeClient(
        "sk_test_standin_...", base_addresses={"api": standin.url}, max_network_retries=2
    )
"""

from .errors import StripeError
from .server import StandIn
from .store import Fault, RequestRecord
from .webhooks import Delivery, sign

__all__ = ["Delivery", "Fault", "RequestRecord", "StandIn", "StripeError", "sign"]
