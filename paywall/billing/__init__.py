"""Premium plans on Stripe: catalogue, checkout, portal, webhooks, access rules, reconcile."""
