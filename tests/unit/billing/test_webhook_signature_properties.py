"""Property-based: the webhook signature check never crashes and never verifies random or
mutated input; a correctly signed payload always verifies."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paywall.billing.gateway import SignatureInvalid, StripeGateway
from stripe_standin import sign

SECRET = "whsec_property_" + "x" * 24


def event_payload(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": "invoice.paid"}).encode()


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.one_of(st.none(), st.text(max_size=300)))
def test_random_input_never_verifies_or_crashes(payload: bytes, header: str | None) -> None:
    with pytest.raises(SignatureInvalid):
        StripeGateway.verify_event(payload, header, [SECRET])


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=40), st.data())
def test_mutated_payloads_and_headers_never_verify(event_id: str, data: st.DataObject) -> None:
    payload = event_payload(event_id)
    header = sign(payload, SECRET)
    target = data.draw(st.sampled_from(["payload", "header"]))
    if target == "payload":
        i = data.draw(st.integers(0, len(payload) - 1))
        flipped = bytes([payload[i] ^ data.draw(st.integers(1, 255))])
        payload = payload[:i] + flipped + payload[i + 1 :]
    else:
        signature = header.split("v1=", 1)[1]
        i = data.draw(st.integers(0, len(signature) - 1))
        other = data.draw(st.sampled_from("0123456789abcdef").filter(lambda c: c != signature[i]))
        header = header.split("v1=", 1)[0] + "v1=" + signature[:i] + other + signature[i + 1 :]
    with pytest.raises(SignatureInvalid):
        StripeGateway.verify_event(payload, header, [SECRET])


@settings(max_examples=100)
@given(st.text(min_size=1, max_size=40), st.integers(-299, 0))
def test_signed_payloads_verify_within_the_tolerance(event_id: str, age: int) -> None:
    payload = event_payload(event_id)
    header = sign(payload, SECRET, int(time.time()) + age)
    assert StripeGateway.verify_event(payload, header, ["whsec_other", SECRET])["id"] == event_id


@settings(max_examples=100)
@given(st.text(min_size=1, max_size=40), st.integers(301, 10**6))
def test_stale_signatures_never_verify(event_id: str, age: int) -> None:
    payload = event_payload(event_id)
    with pytest.raises(SignatureInvalid):
        StripeGateway.verify_event(payload, sign(payload, SECRET, int(time.time()) - age), [SECRET])
