"""The paywall's benchmark suite: ``python -m bench`` (``make bench``) runs every benchmark and
writes docs/benchmarks.md; ``python -m bench --smoke`` (``make bench-smoke``) is a tiny run that
only proves the harness works.

Every result is a ratio to a baseline measured in the same run (a raw HMAC, a bare Flask app
under the same gunicorn configuration, one argon2 verify, the empty database), as the median of
several runs with their spread. Nothing here asserts on time.
"""
