"""The text of the story alert email."""

from __future__ import annotations

from paywall.accounts.emails import Email


def story_alert(title: str, summary: str | None, url: str, unsubscribe_link: str) -> Email:
    teaser = f"{summary}\n\n" if summary else ""
    return Email(
        "story_alert",
        title[:200],
        f"{teaser}Read it: {url}\n\n"
        "You get these emails because you turned on story alerts.\n"
        f"Stop them with one click: {unsubscribe_link}",
    )
