"""Template sources: mistakes Django renders silently."""

import re
from pathlib import Path

from django.conf import settings

TEMPLATE_ROOTS = [Path(root) for engine in settings.TEMPLATES for root in engine["DIRS"]]


def test_template_comments_are_on_one_line():
    """Django's {# #} comment ends on its line: spread over lines, it is shown on the page as text."""
    open_comments = []
    for root in TEMPLATE_ROOTS:
        for template in root.rglob("*"):
            if template.suffix not in (".html", ".txt", ".css"):
                continue
            for number, line in enumerate(template.read_text().splitlines(), 1):
                if re.search(r"\{#(?!.*#\})", line):
                    open_comments.append(f"{template.relative_to(root)}:{number}")
    assert TEMPLATE_ROOTS and not open_comments


def test_every_scrolling_table_is_a_labelled_region_the_keyboard_can_reach():
    """A table too wide for a phone scrolls inside its box; keyboard users scroll it once it has the
    focus (WCAG 2.1.1, axe's scrollable-region-focusable), and a screen reader names the region."""
    for path in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        text = path.read_text()
        ids = set(re.findall(r'\bid="([^"]+)"', text))
        for tag in re.findall(r'<div class="table-wrap"[^>]*>', text):
            assert 'role="region"' in tag and 'tabindex="0"' in tag, (path.name, tag)
            label = re.search(r'aria-labelledby="([^"]+)"', tag)
            assert label and label.group(1) in ids, (path.name, tag)
