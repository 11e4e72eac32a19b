"""The VAPID key: only demo mode generates one; DEBUG never stands for demo mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from paywall.config import DEFAULTS, ConfigError
from paywall.notifications import init_app


def bare_app(tmp_path: Path, **config: object) -> Flask:
    app = Flask("paywall", instance_path=str(tmp_path / "instance"))
    app.config.from_mapping(DEFAULTS)
    app.config.update(config)
    return app


def test_debug_without_a_vapid_key_refuses_to_start(tmp_path: Path) -> None:
    app = bare_app(tmp_path, DEBUG=True, DEMO=False, VAPID_PRIVATE_KEY=None)
    with pytest.raises(ConfigError, match="PAYWALL_VAPID_PRIVATE_KEY"):
        init_app(app)
    assert not (tmp_path / "instance").exists()  # no key was generated
