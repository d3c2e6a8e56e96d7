"""Names of stored values as readers see them, in their language."""

import json
from datetime import date

from django import template
from django.utils.translation import gettext as _

from ..access import group_label as _group_label
from ..models import LANGUAGE_CHOICES

register = template.Library()


@register.filter
def group_label(group):
    """A group (or its name) named for the reader: access.group_label."""
    return _group_label(getattr(group, "name", group))


@register.filter
def language_name(code):
    """A language code (nl, en) as the language's name in the reader's language; anything else as is."""
    return str(dict(LANGUAGE_CHOICES).get(code, code))


@register.filter
def iso_date(value):
    """A date stored as text (YYYY-MM-DD, as in a report's parameters) as a date for the date filter;
    anything else as is."""
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return value


@register.filter
def duration(seconds):
    """Seconds as minutes and seconds for the reader ("2 min 5 s", "45 s"); None as is."""
    if seconds is None:
        return None
    minutes, rest = divmod(int(seconds), 60)
    if not minutes:
        return _("%(seconds)d s") % {"seconds": rest}
    return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": rest}


@register.filter
def tries(answers):
    """The tries per question of an acknowledgement's sealed answers (comprehension.final_answers)."""
    if not answers:
        return []
    try:
        return [str(answer["tries"]) for answer in json.loads(answers)]
    except (ValueError, TypeError, KeyError):
        return []
