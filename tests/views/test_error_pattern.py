"""The GOV.UK error pattern: a form that comes back with errors starts with an error summary that
links to each field, the page title starts with "Error:", the summary takes the focus (its script is
on the page), every field's error is tied to it with aria-describedby, and no form leaves validation
to the browser's own (English) bubbles."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from guidelines.models import Acknowledgement

TEMPLATES = Path(settings.BASE_DIR) / "templates"


class Page(HTMLParser):
    """The ids, the aria-describedby references and the title of a page."""

    def __init__(self, html):
        super().__init__()
        self.ids, self.described_by, self.title, self._in_title = set(), {}, "", False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if "aria-describedby" in attrs:
            self.described_by[attrs.get("id") or attrs.get("name")] = attrs["aria-describedby"].split()
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def summary_links(html):
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    return re.findall(r'href="#([^"]+)"', summary)


def assert_error_pattern(response, fields, *, prefix="Error:"):
    html = response.content.decode()
    page = Page(html)
    assert response.status_code == 400
    assert page.title.strip().startswith(prefix), page.title
    assert "js/error-summary" in html
    assert sorted(summary_links(html)) == sorted(f"id_{name}" for name in fields)
    for name in fields:
        assert f"id_{name}" in page.ids, name
        assert f"id_{name}_error" in page.described_by.get(f"id_{name}", []), name
    for element, references in page.described_by.items():
        assert set(references) <= page.ids, (element, references)  # nothing points at a missing id
    return page


def test_the_acknowledge_error_lands_beside_the_checkbox(client_as, alice, version_1):
    response = client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]),
                                     {"version": version_1.pk, "language": "en", "confirm": ""})
    assert_error_pattern(response, ["confirm"])
    assert ">Please tick the box" in response.content.decode()  # the message alone: it names the box
    # The summary is just above the form, not at the top above the guideline's text.
    html = response.content.decode()
    assert html.index("guideline-body") < html.index("data-error-summary") < html.index('class="ack-form"')
    assert not Acknowledgement.objects.exists()


def test_hr_settings_errors_are_summarised_and_linked_in_dutch(client_as, hilde, guideline):
    with translation.override("nl"):
        client = client_as(hilde)
        client.cookies["django_language"] = "nl"
        response = client.post(reverse("guidelines:hr_guideline_new"), {
            "title_nl": "X", "title_en": "X", "slug": "social-media",
            "owner_email": "nobody@example.com", "audience_everyone": "on",
            "due_days": "0"}, HTTP_ACCEPT_LANGUAGE="nl")
    assert_error_pattern(response, ["slug", "owner_email", "due_days"], prefix="Fout:")
    html = response.content.decode()
    assert "Er is een probleem" in html and "Eigenaar (e-mailadres): Er is geen actief account" in html
    assert html.index("data-error-summary") < html.index("<h1")  # at the top of the page


def test_the_auditor_pack_form_errors_point_at_existing_ids(client_as, arjen, guideline, version_1):
    response = client_as(arjen).post(reverse("guidelines:report_pack"), {
        "guideline": "social-media", "version": "9.9", "as_of": "not a date", "language": "en"})
    html = response.content.decode()
    page = Page(html)
    assert response.status_code == 400 and page.title.strip().startswith("Error:")
    links = summary_links(html)
    assert links and set(links) <= page.ids
    for references in page.described_by.values():
        assert set(references) <= page.ids


def test_the_draft_editor_errors_are_summarised_and_linked(client_as, hilde, guideline, version_1):
    response = client_as(hilde).post(reverse("guidelines:hr_draft_new", args=["social-media"]), {
        "leading_language": "nl", "effective_date": "not a date", "title_nl": "Richtlijn", "body_nl": "",
        "summary_nl": "", "title_en": "", "body_en": "# Guideline", "summary_en": ""})
    assert_error_pattern(response, ["effective_date", "body_nl", "title_en"])
    html = response.content.decode()
    assert re.search(r'<textarea name="body_nl" id="id_body_nl"[^>]*aria-invalid="true" '
                     r'aria-describedby="id_body_nl_error"', html)
    # The preview is a labelled region the keyboard can reach (it scrolls), not a div with a stray label.
    for language in ("nl", "en"):
        assert re.search(rf'<div class="preview guideline-body" id="preview-{language}" role="region" tabindex="0" '
                         rf'aria-labelledby="preview-{language}-label legend-{language}">', html)
        assert f'id="preview-{language}-label"' in html


def test_a_page_without_errors_has_no_summary_or_prefix(client_as, alice, version_1):
    html = client_as(alice).get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "data-error-summary" not in html and "error-summary.js" not in html
    assert not Page(html).title.strip().startswith("Error:")


@pytest.mark.parametrize("template", sorted(str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")
                                            if "<form" in path.read_text()))
def test_every_form_turns_the_browsers_validation_bubbles_off(template):
    for tag in re.findall(r"<form\b[^>]*>", (TEMPLATES / template).read_text()):
        assert "novalidate" in tag, tag
