"""Entitlement tokens: short-lived, signed, bound to a device session."""
