"""Outgoing email: written to a table in the request's transaction, sent after it commits."""
