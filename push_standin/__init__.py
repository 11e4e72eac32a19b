"""A local stand-in for browsers' push services (RFC 8030), for ``make run`` and the tests.

It hands out subscriptions (an endpoint and the browser's keys), receives pushes, verifies the
VAPID JWT (RFC 8292, with PyJWT: signature, ``aud``, ``exp``, ``sub``), decrypts the payload
(RFC 8291, with http-ece), lists what it received, and can be told to answer 410, 429 or 500::

    with PushStandIn() as push:
        subscription = push.new_subscription()     # PushSubscription.toJSON()
        ...
        push.messages(subscription["endpoint"])    # decrypted payloads
"""

from .server import Message, PushStandIn

__all__ = ["Message", "PushStandIn"]
