"""The keyboard focus ring is visible on every background of the site (WCAG 2.2, 1.4.11 non-text
contrast: at least 3:1 against what is next to it). It is two rings, the focus colour inside and the
ink colour outside; on each background at least one of them must reach 3:1."""

import re
from pathlib import Path

import pytest
from django.conf import settings

CSS = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
COLOURS = {name: value if len(value) == 7 else "#" + "".join(digit * 2 for digit in value[1:])
           for name, value in re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\b", CSS)}
# Every background a focusable element sits on: the page, cards, the header, and the notices.
BACKGROUNDS = ["bg", "card", "brand", "brand-dark", "ok-bg", "warn-bg", "err-bg"]


def luminance(colour):
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first, second):
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_ring_is_the_focus_colour_inside_and_the_ink_colour_outside():
    rule = re.search(r":focus-visible \{([^}]*)\}", CSS).group(1)
    assert "outline: 3px solid var(--focus)" in rule and "box-shadow: 0 0 0 6px var(--ink)" in rule


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_one_of_the_two_rings_stands_out_by_three_to_one(background):
    ratios = {ring: contrast(COLOURS[ring], COLOURS[background]) for ring in ("focus", "ink")}
    assert max(ratios.values()) >= 3, (background, ratios)


def test_the_focus_colour_alone_would_not_do_on_white():
    """Why two rings: the yellow alone is about 1.6:1 on white."""
    assert contrast(COLOURS["focus"], "#ffffff") < 3
