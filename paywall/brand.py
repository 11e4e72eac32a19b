"""The publisher's brand (``PAYWALL_BRAND_NAME``, ``_LOGO_URL``, ``_COLOR``) on every page and
email, so the service looks like the news site it sits behind. Templates can also be overridden
by a theme folder placed first on the loader (``PAYWALL_TEMPLATE_FOLDER``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import jinja2
from flask import Flask
from markupsafe import Markup, escape

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def brand(config: Any) -> dict[str, Any]:
    color = str(config.get("BRAND_COLOR") or "#b3001b")
    return {
        "name": config.get("BRAND_NAME") or "Paywall",
        "logo_url": config.get("BRAND_LOGO_URL") or None,
        "color": color if HEX.match(color) else "#b3001b",
        "site_url": config.get("SITE_URL"),
        "public_url": config.get("PUBLIC_URL"),
    }


def day(value: datetime | None) -> str:
    """``3 January 2027`` (the way the reader's pages and emails write dates)."""
    return f"{value.day} {value:%B %Y}" if value else "the end of the period"


def long_date(iso: str | None) -> str:
    """A Jinja filter: an ISO date or timestamp as ``3 January 2027``."""
    if not iso:
        return ""
    try:
        return day(datetime.fromisoformat(iso))
    except ValueError:
        return iso


URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:)]")


def html_email(subject: str, body: str) -> str:
    """The HTML part of an email: the plain text in the brand's frame, links clickable, lines
    starting with "- " as a list. Needs an app context (the brand comes from its config)."""
    from flask import current_app, render_template

    blocks: list[dict[str, Any]] = []
    for chunk in body.split("\n\n"):
        lines = [line for line in chunk.split("\n") if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            blocks.append({"entries": [_linked(line[2:]) for line in lines]})
        elif lines:
            blocks.append({"text": Markup("<br>").join(_linked(line) for line in lines)})
    return render_template(
        "email/message.html", subject=subject, blocks=blocks, brand=brand(current_app.config)
    )


def _linked(text: str) -> Markup:
    out, last = Markup(""), 0
    for match in URL.finditer(text):
        out += escape(text[last : match.start()])
        out += Markup('<a href="{0}" style="color:{1}">{0}</a>').format(match.group(0), "#0b57d0")
        last = match.end()
    return out + escape(text[last:])


def luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio between two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def init_app(app: Flask) -> None:
    folder = app.config.get("TEMPLATE_FOLDER")
    if folder:
        assert app.jinja_loader is not None  # noqa: S101 - Flask always sets one
        app.jinja_loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(folder), app.jinja_loader])

    app.add_template_filter(long_date, "long_date")

    @app.context_processor
    def inject_brand() -> dict[str, Any]:
        return {"brand": brand(app.config), "url_rules": app.view_functions}
