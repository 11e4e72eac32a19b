"""The README's list of handled webhook events is exactly what the code handles."""

from __future__ import annotations

import re
from pathlib import Path

from paywall.billing.webhooks import CATALOGUE_PREFIXES, WebhookService

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_events() -> list[str]:
    text = README.read_text()
    found = re.search(r"Handled events \(.*?```text\n(.*?)```", text, re.S)
    assert found, "README.md must list the handled events in a ```text block"
    return found.group(1).split()


def test_readme_lists_exactly_the_handled_events() -> None:
    handled = set(WebhookService(session=None, billing=None).handlers)  # type: ignore[arg-type]
    handled |= {f"{prefix}.*" for prefix in CATALOGUE_PREFIXES}
    listed = readme_events()
    assert len(listed) == len(set(listed)), "an event is listed twice"
    assert set(listed) == handled


def test_readme_names_the_pinned_api_version() -> None:
    from paywall.billing.gateway import API_VERSION

    text = README.read_text()
    assert f"Create the webhook endpoint with API version\n`{API_VERSION}`" in text
