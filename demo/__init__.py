"""``make run``: the service, the local Stripe stand-in and the demo news site on one machine."""
