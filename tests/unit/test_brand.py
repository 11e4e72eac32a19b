"""The brand settings: a colour white text can sit on, templates a publisher can override."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywall import create_app
from paywall.brand import contrast
from paywall.config import ConfigError
from tests.unit.test_config import SAFE


def test_contrast_ratios_match_wcag() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48  # the old footer grey: too light
    assert contrast("#595959", "#ffffff") >= 4.5
    assert contrast("#b3001b", "#ffffff") >= 4.5


@pytest.mark.parametrize("color", ["#ffcc00", "red", "#12345"])
def test_a_brand_colour_white_text_cannot_sit_on_is_refused(color: str) -> None:
    with pytest.raises(ConfigError, match="PAYWALL_BRAND_COLOR"):
        create_app({**SAFE, "BRAND_COLOR": color})


def test_brand_name_and_colour_reach_every_page(tmp_path: Path) -> None:
    app = create_app({**SAFE, "BRAND_NAME": "The Morning Ledger", "BRAND_COLOR": "#0b4f6c"})
    html = app.test_client().get("/forgot-password").get_data(as_text=True)
    assert "The Morning Ledger" in html and "--brand: #0b4f6c" in html


def test_a_template_folder_overrides_the_services_templates(tmp_path: Path) -> None:
    (tmp_path / "forgot.html").write_text("<p>Our own reset page</p>")
    app = create_app({**SAFE, "TEMPLATE_FOLDER": str(tmp_path)})
    assert app.test_client().get("/forgot-password").get_data(as_text=True) == (
        "<p>Our own reset page</p>"
    )
