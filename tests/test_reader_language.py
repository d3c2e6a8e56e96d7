"""Every page, e-mail, PDF and CSV names a guideline in the reader's language, and the Dutch pages are
Dutch: role group names, the sign-in method, the language of a pack, short dates, "je" in e-mails.

A guideline has a title per language (Guideline.title gives the reader's, else the other one); a page
about one version (receipt, history, certificate, "already acknowledged") gives that version's text
title in the reader's language (Version.title)."""

import re
import subprocess
from datetime import date, datetime
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from guidelines import notifications, services
from guidelines.access import group_label
from guidelines.accounts import sign_in_label
from guidelines.forms import GuidelineForm
from guidelines.models import Guideline, NotificationLog, Report
from guidelines.reports import jobs

from .factories import TITLES, make_employee, make_guideline, publish

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits")]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MONDAY = date(2027, 3, 1)
OTHER = {"nl": "en", "en": "nl"}

@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def at(day, hour=9):
    return datetime(day.year, day.month, day.day, hour, tzinfo=AMSTERDAM)


def page_text(response, language=None):
    """The page, entities decoded; without the elements marked as in the other language (lang="…"),
    such as the statement the employee agreed to in the language they read."""
    assert response.status_code == 200, response.status_code
    html = unescape(response.content.decode())
    if language:
        html = re.sub(rf'<(\w+)[^>]*\blang="{OTHER[language]}"[^>]*>.*?</\1>', "", html, flags=re.S)
    return html


def in_language(client, language):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def pdf_text(path):
    return " ".join(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())


@pytest.fixture
def world(alice, bob, hilde, arjen, web_meta):
    guideline = make_guideline(hilde, due_days=14)
    with time_machine.travel(at(MONDAY, 8), tick=False):
        version = publish(guideline, author=hilde, approver=bob.user)
    with time_machine.travel(at(date(2027, 3, 2)), tick=False):
        ack, _ = services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
    return {"guideline": guideline, "version": version, "ack": ack}


# The accessor ---------------------------------------------------------------------------------------


def test_the_title_is_the_readers_language_else_the_other_one(hilde):
    guideline = Guideline(slug="x", title_nl="Titel", title_en="Title", owner=hilde)
    for language, expected in (("nl", "Titel"), ("en", "Title"), ("en-gb", "Title"), ("de", "Titel")):
        with translation.override(language):
            assert guideline.title == str(guideline) == expected
    guideline.title_en = ""
    with translation.override("en"):
        assert guideline.title == "Titel"
    assert guideline.title_in("en") == "Titel" and guideline.title_in("nl") == "Titel"


def test_guidelines_are_listed_in_the_order_of_the_readers_titles(hilde):
    make_guideline(hilde, slug="a", title_nl="Zorgplicht", title_en="Care")
    make_guideline(hilde, slug="b", title_nl="Afval", title_en="Waste")
    with translation.override("nl"):
        assert [g.slug for g in Guideline.objects.by_title()] == ["b", "a"]
    with translation.override("en"):
        assert [g.slug for g in Guideline.objects.by_title()] == ["a", "b"]


def test_the_guideline_form_asks_for_both_titles(client_as, hilde):
    form = GuidelineForm({"title_nl": "", "title_en": " ", "slug": "x", "owner_email": hilde.email,
                          "audience_everyone": "on", "due_days": "30"})
    assert not form.is_valid() and {"title_nl", "title_en"} <= set(form.errors)
    response = client_as(hilde).post(reverse("guidelines:hr_guideline_new"), {
        "title_nl": "Schoon bureau", "title_en": "Clean desk", "slug": "clean-desk", "owner_email": hilde.email,
        "audience_everyone": "on", "due_days": "30"})
    assert response.status_code == 302
    assert Guideline.objects.filter(slug="clean-desk", title_nl="Schoon bureau", title_en="Clean desk").exists()


# Pages ---------------------------------------------------------------------------------------------


def _pages(world):
    slug, ack = world["guideline"].slug, world["ack"]
    return [
        ("alice", reverse("guidelines:home")),
        ("alice", reverse("guidelines:history")),
        ("alice", reverse("guidelines:receipt", args=[ack.pk])),
        ("alice", reverse("guidelines:versions", args=[slug])),
        ("alice", reverse("guidelines:detail", args=[slug])),
        ("hilde", reverse("guidelines:hr_guidelines")),
        ("hilde", reverse("guidelines:hr_guideline", args=[slug])),
        ("hilde", reverse("guidelines:hr_guideline_retire", args=[slug])),
        ("hilde", reverse("guidelines:dashboard_overview")),
        ("hilde", reverse("guidelines:dashboard_guideline", args=[slug])),
        ("bob", reverse("guidelines:team")),
    ]


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_page_names_the_guideline_in_the_readers_language(client, world, alice, bob, hilde, language):
    from .factories import sign_in

    people = {"alice": alice, "bob": bob, "hilde": hilde}
    for who, url in _pages(world):
        client.logout()
        text = page_text(in_language(sign_in(client, people[who]), language).get(url), language)
        assert TITLES[language] in text, (who, url)
        assert TITLES[OTHER[language]] not in text, (who, url)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_already_acknowledged_names_the_version_in_the_readers_language(client_as, world, alice, language):
    version = world["version"]
    response = in_language(client_as(alice), language).post(
        reverse("guidelines:acknowledge", args=[world["guideline"].slug]),
        {"version": version.pk, "language": "en", "confirm": "on"})
    text = page_text(response, language)
    assert TITLES[language] in text and TITLES[OTHER[language]] not in text


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_auditor_pages_name_the_guideline_in_the_readers_language(client_as, world, arjen, language):
    client = in_language(client_as(arjen), language)
    with time_machine.travel(at(date(2027, 3, 10), 12), tick=False):
        report = jobs.start_audit_pack(user=arjen, guideline_slug="social-media", version="all", language="en")
    status = reverse("guidelines:report_status", args=[report.verification_code])
    for url in (reverse("guidelines:report_pack"), status):
        text = page_text(client.get(url), language)
        assert TITLES[language] in text and TITLES[OTHER[language]] not in text, url
    # The recent packs: the version choice and the pack's language in words, not "all" and "en".
    recent = page_text(client.get(reverse("guidelines:report_pack")))
    row = re.search(r'<td class="meta">(.*?)</td>', recent, re.S).group(1)
    expected = {"nl": ("alle versies", "peildatum 10\u00a0mrt\u00a02027", "Engels"),
                "en": ("every version", "as of 10\u00a0Mar\u00a02027", "English")}[language]
    assert all(part in row for part in expected) and ", en" not in row


def test_a_page_about_one_version_keeps_that_versions_title_after_a_rename(client_as, world, alice, hilde):
    Guideline.objects.filter(pk=world["guideline"].pk).update(title_nl="Sociale media (nieuw)",
                                                              title_en="Social media (new)")
    client = in_language(client_as(alice), "nl")
    for url in (reverse("guidelines:receipt", args=[world["ack"].pk]), reverse("guidelines:history")):
        text = page_text(client.get(url), "nl")
        assert TITLES["nl"] in text and "Sociale media (nieuw)" not in text
    hr = in_language(client_as(hilde), "nl")
    assert "Sociale media (nieuw)" in page_text(hr.get(reverse("guidelines:hr_guidelines")))


def test_the_history_names_versions_with_one_query_for_all_texts(client_as, world, alice,
                                                                 django_assert_max_num_queries):
    client = in_language(client_as(alice), "nl")
    client.get(reverse("guidelines:history"))
    with django_assert_max_num_queries(12):
        assert TITLES["nl"] in page_text(client.get(reverse("guidelines:history")))


# PDFs and CSV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_certificate_names_the_version_in_its_language(world, alice, language):
    report = jobs.certificate(acknowledgement=world["ack"], user=alice.user, language=language)
    text = pdf_text(jobs.reports_dir() / report.file)
    assert TITLES[language] in text and world["ack"].statement in text
    # In Dutch only the statement, as agreed to in English, carries the English title.
    assert text.count(TITLES["en"]) == 1 if language == "nl" else TITLES["nl"] not in text
    if language == "nl":
        assert "Vastgelegd als: password" in text and "E-mailadres en wachtwoord" in text


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_pack_names_the_guideline_in_its_language(world, arjen, language):
    with time_machine.travel(at(date(2027, 3, 10), 12), tick=False):
        report = jobs.generate_now(jobs.start_audit_pack(user=arjen, guideline_slug="social-media",
                                                         language=language))
    path = jobs.reports_dir() / report.file
    cover = " ".join(subprocess.run(["pdftotext", "-l", "1", "-layout", str(path), "-"], capture_output=True,
                                    text=True, check=True).stdout.split())
    assert TITLES[language] in cover and TITLES[OTHER[language]] not in cover
    heading = {"nl": "Auditorpakket", "en": "Auditor pack"}[language]
    text = pdf_text(path)
    assert f"{heading}: {TITLES[language]}" in text and f"{heading}: {TITLES[OTHER[language]]}" not in text
    assert Report.objects.get(pk=report.pk).status == Report.Status.DONE


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_csv_export_is_language_neutral_data(client_as, world, hilde, language):
    """The CSV names the guideline by its slug (in the file name) and has fixed column names in both
    languages: a spreadsheet or script reads it the same whoever downloaded it."""
    response = in_language(client_as(hilde), language).get(
        reverse("guidelines:dashboard_export", args=[world["guideline"].slug]))
    text = b"".join(response.streaming_content).decode()
    assert "social-media-1.0-" in response["Content-Disposition"]
    assert text.splitlines()[0].lstrip("\ufeff").startswith("employee_number,")
    assert TITLES["nl"] not in text and TITLES["en"] not in text


# E-mails --------------------------------------------------------------------------------------------


def test_every_email_names_the_guideline_in_the_recipients_language(bob, hilde, alice):
    daan = make_employee("daan@example.com", "E0100", manager=bob, language="nl")
    guideline = make_guideline(hilde, due_days=14)
    with time_machine.travel(at(MONDAY, 8), tick=False):
        version = publish(guideline, author=hilde, approver=bob.user)
    day = MONDAY
    with time_machine.travel(at(day), tick=False):
        notifications.run_batch(notifications.compose_announcements(version, [alice.pk, daan.pk], day), day=day,
                                claimed_by="a")
    late = date(2027, 3, 22)
    with time_machine.travel(at(late), tick=False):
        nudges = notifications.compose_digests([alice.pk, daan.pk], late, kind=NotificationLog.Kind.NUDGE,
                                               version=version)
        notifications.run_batch(nudges, day=late, claimed_by="r")
        notifications.run_batch(notifications.compose_escalations([bob.pk], late), day=late, claimed_by="e")
    languages = {"alice@example.com": "en", "daan@example.com": "nl", "bob@example.com": "en"}
    assert len(mail.outbox) >= 5
    for message in mail.outbox:
        language = languages[message.to[0]]
        html = message.alternatives[0][0]
        for part in (message.subject, message.body, html):
            assert TITLES[OTHER[language]] not in part, (message.to, message.subject)
        assert TITLES[language] in message.body and TITLES[language] in html


def _email_variants():
    """Every e-mail template, rendered in Dutch for each of its branches."""
    item = {"title": "Richtlijn", "number": "1.0", "due_date": date(2027, 3, 15), "url": "http://x/",
            "employee": "Daan", "employee_number": "E1"}
    contexts = [
        {"items": [{**item, "overdue": overdue, "acknowledged": acknowledged}], "kind": kind,
         "greeting_name": "Daan", "home_url": "http://x/", "team_url": "http://x/team/",
         "employee_number": "E1", "changed_at": at(MONDAY), "old_email": "a@x", "new_email": "b@x", "run_id": 3}
        for overdue in (False, True) for acknowledged in (False, True) for kind in ("reminder", "nudge")
    ]
    folder = Path(settings.BASE_DIR) / "templates" / "emails"
    templates = sorted(f"emails/{path.name}" for path in folder.iterdir() if path.suffix in (".txt", ".html"))
    assert len(templates) >= 12
    with translation.override("nl"):
        for name in templates:
            for context in contexts:
                yield name, render_to_string(name, context)


def test_dutch_emails_say_je_not_u():
    formal = re.compile(r"\b(u|uw|uwe)\b", re.IGNORECASE)
    for name, rendered in _email_variants():
        text = re.sub(r"<[^>]+>", " ", unescape(rendered))
        assert not formal.search(text), (name, formal.search(text).group(0), text)


def test_the_dutch_catalogue_says_je_in_every_email_string():
    """Also the branches no template context above reaches: every Dutch text the e-mail templates use."""
    po = (Path(settings.BASE_DIR) / "guidelines/locale/nl/LC_MESSAGES/django.po").read_text()
    entries = [entry for entry in po.split("\n\n") if "templates/emails/" in entry]
    assert len(entries) > 20
    for entry in entries:
        msgstr = " ".join(re.findall(r'^(?:msgstr(?:\[\d\])? )?"(.*)"$', entry.split("msgstr", 1)[1], re.M))
        assert not re.search(r"\b(u|uw|uwe)\b", msgstr, re.IGNORECASE), entry


# Labels: role groups, sign-in, dates, the slug --------------------------------------------------------


def test_role_groups_are_named_in_the_readers_language_and_others_as_named():
    with translation.override("nl"):
        assert group_label("Approvers") == "Goedkeurders"
        assert group_label("Night shift <b>") == "Night shift <b>"
    with translation.override("en"):
        assert group_label("Approvers") == "Approvers"


def test_the_guideline_form_and_page_show_translated_group_names(client_as, hilde, guideline):
    from django.contrib.auth.models import Group

    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_groups.set([Group.objects.get(name="Approvers")])
    client = in_language(client_as(hilde), "nl")
    form = page_text(client.get(reverse("guidelines:hr_guideline_edit", args=[guideline.slug])))
    assert "Goedkeurders" in form and ">Approvers<" not in form and "Approvers</label>" not in form
    assert "Webadres-naam" in form or "webadres-naam" in form.lower()
    detail = page_text(client.get(reverse("guidelines:hr_guideline", args=[guideline.slug])))
    assert "Goedkeurders" in detail and "Approvers" not in detail


def test_sign_in_methods_are_named_in_the_readers_language():
    with translation.override("nl"):
        assert sign_in_label("password") == "e-mailadres en wachtwoord"
        assert sign_in_label("password+mfa") == "e-mailadres en wachtwoord, met een tweede factor"
    with translation.override("en"):
        assert sign_in_label("password+mfa") == "e-mail address and password, with a second factor"


@pytest.mark.parametrize(("language", "expected"), [("nl", "26\u00a0mei\u00a02027"), ("en", "26\u00a0May\u00a02027")])
def test_short_dates_write_the_month_as_the_language_does(client_as, world, alice, language, expected):
    from django.utils import formats

    with translation.override(language):
        assert formats.date_format(date(2027, 5, 26), "SHORT_DATE_FORMAT") == expected
    text = page_text(in_language(client_as(alice), language).get(reverse("guidelines:history")))
    month = {"nl": "2\u00a0mrt\u00a02027", "en": "2\u00a0Mar\u00a02027"}[language]
    assert month in text
    if language == "nl":
        assert "Mrt" not in text


# The migration ---------------------------------------------------------------------------------------


def test_the_migration_gives_both_languages_the_one_title_there_was(hilde):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("guidelines", "0018_history_written_by_its_owner")], [("guidelines",
                                                                              "0019_guideline_titles_per_language")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)  # in the test's transaction: rolled back with it
    old = executor.loader.project_state(before).apps.get_model("guidelines", "Guideline")
    old.objects.create(slug="old", title="Social media guideline", owner_id=hilde.pk)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending trigger events before ALTER TABLE
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    # The model as 0019 left it: later migrations add columns the database has not got yet.
    migrated = executor.loader.project_state(after).apps.get_model("guidelines", "Guideline")
    guideline = migrated.objects.get(slug="old")
    assert (guideline.title_nl, guideline.title_en) == ("Social media guideline", "Social media guideline")
    migrated.objects.filter(pk=guideline.pk).update(title_nl="Richtlijn sociale media")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.migrate(before)  # and back: the English title is the one title
    old = executor.loader.project_state(before).apps.get_model("guidelines", "Guideline")
    assert old.objects.get(slug="old").title == "Social media guideline"
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_public_verification_of_a_certificate_names_the_version_in_the_readers_language(
        client, world, alice, language):
    report = jobs.certificate(acknowledgement=world["ack"], user=alice.user, language="en")
    text = page_text(in_language(client, language).get(reverse("guidelines:public_verify"),
                                                      {"code": report.verification_code}), language)
    assert TITLES[language] in text and TITLES[OTHER[language]] not in text


def test_the_admin_lists_guidelines_by_the_readers_title_and_finds_them_by_either(client_as, hilde, guideline):
    client = in_language(client_as(hilde), "nl")
    url = reverse("admin:guidelines_guideline_changelist")
    listed = page_text(client.get(url))
    assert ">Titel<" in listed and TITLES["nl"] in listed and TITLES["en"] not in listed
    for query, found in (("sociale", True), ("Social media", True), ("nothing like it", False)):
        assert (TITLES["nl"] in page_text(client.get(url, {"q": query}))) is found
