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
