"""``make run`` gives the news site a publisher key to follow the revocation feed with: the first
of PAYWALL_PUBLISHER_API_KEYS when the environment sets it, one made for the run otherwise."""

from __future__ import annotations

import json

from demo.__main__ import demo_environment


def test_the_first_configured_key_is_the_sites() -> None:
    as_json, _ = demo_environment({"PAYWALL_PUBLISHER_API_KEYS": '["k-one", "k-two"]'})
    assert as_json["ARTICLE_SITE_PUBLISHER_KEY"] == "k-one"
    assert as_json["PAYWALL_PUBLISHER_API_KEYS"] == '["k-one", "k-two"]'
    as_csv, _ = demo_environment({"PAYWALL_PUBLISHER_API_KEYS": "k-one,k-two"})
    assert as_csv["ARTICLE_SITE_PUBLISHER_KEY"] == "k-one"


def test_a_key_is_made_per_run_when_none_is_set() -> None:
    first, _ = demo_environment({})
    second, _ = demo_environment({})
    key = first["ARTICLE_SITE_PUBLISHER_KEY"]
    assert json.loads(first["PAYWALL_PUBLISHER_API_KEYS"]) == [key]
    assert len(key) >= 32 and key != second["ARTICLE_SITE_PUBLISHER_KEY"]
