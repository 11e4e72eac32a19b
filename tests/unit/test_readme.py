"""The README's configuration documents every setting the service reads."""

from __future__ import annotations

import re
from pathlib import Path

from paywall.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]

#: Keys that feed Flask or an extension with a fixed value: their libraries document them.
LIBRARY_KEYS = {
    "RATELIMIT_HEADERS_ENABLED",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "WTF_CSRF_TIME_LIMIT",
    "SQLALCHEMY_ENGINE_OPTIONS",
    "JSON_SORT_KEYS",
    "API_TITLE",
    "API_VERSION",
    "OPENAPI_VERSION",
    "OPENAPI_URL_PREFIX",
    "OPENAPI_JSON_PATH",
}


def documented(text: str) -> set[str]:
    """Every ``PAYWALL_<KEY>`` in ``text``, with shorthands expanded: `PAYWALL_A_B_C` / `_D`
    names A_B_D (and A_D, A_B_C_D: any candidate; only real settings are looked up)."""
    names = set(re.findall(r"PAYWALL_([A-Z0-9_]+)", text))
    for match in re.finditer(r"`PAYWALL_([A-Z0-9_]+)`((?:\s*/\s*`_[A-Z0-9_]+`)+)", text):
        first = match.group(1).split("_")
        for suffix in re.findall(r"`_([A-Z0-9_]+)`", match.group(2)):
            for keep in range(1, len(first)):
                names.add("_".join(first[:keep] + suffix.split("_")))
    return names


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = sorted(k for k in DEFAULTS if k not in LIBRARY_KEYS and k not in documented(readme))
    assert missing == [], f"document these in README.md's configuration: {missing}"


def test_the_shorthand_is_read_as_the_readme_means_it() -> None:
    names = documented("| `PAYWALL_RESET_LIMIT_PER_ACCOUNT` / `_PER_ADDRESS` | x |")
    assert {"RESET_LIMIT_PER_ACCOUNT", "RESET_LIMIT_PER_ADDRESS"} <= names
    assert "RESET_LIMIT_PER_DEVICE" not in names
