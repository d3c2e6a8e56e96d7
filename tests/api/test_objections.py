"""Objections and exception requests through the API: evidence like the acknowledgements (the version
and language shown with its hash, the statement, the reason, who and when) with HR's handling, paged by
cursor in constant queries, filtered by guideline, version, employee, kind and whether HR has handled
them. Only an evidence reader's token reads them, as for acknowledgements; a bad filter is a 400 that
names it."""

from datetime import datetime

import pytest
from django.urls import reverse

from guidelines import questions
from guidelines.models import Objection

from ..factories import make_guideline, publish
from .conftest import service_account

Kind = Objection.Kind
URL = reverse("api:objections")


def object_to(employee, version, meta, kind=Kind.OBJECTION, reason="The rule on private accounts goes too far."):
    return questions.record_objection(employee=employee, version=version, language="en", kind=kind, reason=reason,
                                      meta=meta)


@pytest.fixture
def recorded(alice, otto, bob, hilde, version_1, web_meta):
    """Alice objects (HR answers), Otto asks for an exception (HR grants it), Bob asks for one (open)."""
    objection = object_to(alice, version_1, web_meta)
    questions.resolve(objection=objection, by=hilde, outcome="answered", note="The rule stays, for good reasons.")
    exception = object_to(otto, version_1, web_meta, kind=Kind.EXCEPTION, reason="I have no social media.")
    questions.resolve(objection=exception, by=hilde, outcome="exempted", note="Exempt while you have none.")
    still_open = object_to(bob, version_1, web_meta, kind=Kind.EXCEPTION, reason="I am on leave.")
    return objection, exception, still_open


def numbers(answer):
    return [row["employee_number"] for row in answer.json()["results"]]


def test_objections_page_by_cursor_in_constant_queries_with_what_was_shown_and_hr_s_handling(
        api, grc_token, recorded, version_1, django_assert_max_num_queries):
    objection, exception, still_open = recorded
    client = api(grc_token)
    client.get(URL)  # the process's first request reads the permission names (accounts.PermissionNames)
    pages, url, params = [], URL, {"page_size": 1}
    while url:
        with django_assert_max_num_queries(3):  # the token with its permissions, its last use, the page
            page = client.get(url, params).json()
        pages.append(page)
        url, params = page["next"], None
    assert len(pages) == 3
    rows = [row for page in pages for row in page["results"]]
    assert [row["id"] for row in rows] == [objection.pk, exception.pk, still_open.pk]

    text = version_1.texts.get(language="en")
    first = rows[0]
    assert datetime.fromisoformat(first.pop("recorded_at")) == objection.recorded_at
    handled = first.pop("resolution")
    assert datetime.fromisoformat(handled.pop("resolved_at")) == objection.resolution.resolved_at
    assert first == {
        "id": objection.pk, "kind": "objection", "guideline": "social-media", "version": "1.0", "major": 1,
        "employee_number": "E0001", "employee_name": "Alice Example", "department": "Operations",
        "language": "en", "content_hash": text.content_hash, "first_opened_at": None,
        "statement": "I have read the Social media guideline, version 1.0, and I object to it.",
        "reason": "The rule on private accounts goes too far.",
    }
    assert handled == {"outcome": "answered", "note": "The rule stays, for good reasons.", "resolved_by": "Hilde",
                       "exemption_id": None}
    assert rows[1]["resolution"]["outcome"] == "exempted"
    assert rows[1]["resolution"]["exemption_id"] == exception.resolution.exemption_id is not None
    assert rows[2]["kind"] == "exception" and rows[2]["resolution"] is None


def test_the_filters_narrow_the_list(api, grc_token, recorded, alice, hilde, bob, web_meta):
    other = publish(make_guideline(hilde, slug="travel"), author=hilde, approver=bob.user)
    object_to(alice, other, web_meta, reason="Trains only is too strict.")
    client = api(grc_token)
    assert numbers(client.get(URL)) == ["E0001", "E0099", "E0002", "E0001"]
    assert numbers(client.get(URL, {"guideline": "social-media"})) == ["E0001", "E0099", "E0002"]
    assert numbers(client.get(URL, {"version": other.pk})) == ["E0001"]
    assert numbers(client.get(URL, {"guideline": "nope"})) == []
    assert numbers(client.get(URL, {"kind": "exception"})) == ["E0099", "E0002"]
    assert numbers(client.get(URL, {"open": "true"})) == ["E0002", "E0001"]
    assert numbers(client.get(URL, {"open": "false"})) == ["E0001", "E0099"]
    assert numbers(client.get(URL, {"open": "true", "kind": "objection", "employee_number": "E0001"})) == ["E0001"]
    # A page that ends where an open one follows goes on with the same filters.
    first = client.get(URL, {"open": "true", "page_size": 1}).json()
    assert numbers(client.get(first["next"])) == ["E0001"] and "open=true" in first["next"]


@pytest.mark.parametrize(("params", "message"), [
    ({"kind": "complaint"}, "Give objection or exception (an exception request)."),
    ({"kind": "\x00"}, "Give objection or exception (an exception request)."),
    ({"open": "yes"}, "Give true or false."),
    ({"open": "True"}, "Give true or false."),
    ({"version": "x"}, "Give a version's id (a number)."),
    ({"version": "²"}, "Give a version's id (a number)."),  # str.isdigit passes it, int() does not
    ({"version": "1" * 19}, "Give a version's id (a number)."),
    ({"guideline": "social\x00media"}, "This value is not valid."),
    ({"employee_number": "E" * 101}, "This value is not valid."),
    ({"page_size": "²"}, "Give a number from 1 to 1000."),
    ({"page_size": "0"}, "Give a number from 1 to 1000."),
    ({"cursor": "eyJhZnRlciI6ICIxIn0"}, "This cursor is not one the API gave out; start again without it."),
])
def test_a_bad_filter_is_a_400_that_names_it_and_says_why(api, grc_token, recorded, params, message):
    response = api(grc_token).get(URL, params)
    assert response.status_code == 400 and response.json() == {name: [message] for name in params}


def test_a_cursor_past_any_id_is_an_empty_page(api, grc_token, recorded):
    from guidelines.api.views import _encode_cursor

    for after in (10**15, 2**63 - 1, 10**30):  # past the largest bigint too: no database error
        answer = api(grc_token).get(URL, {"cursor": _encode_cursor(after)})
        assert answer.status_code == 200 and answer.json() == {"next": None, "results": []}


def test_acknowledgements_refuse_the_digits_int_cannot_read_too(api, grc_token, version_1):
    for params in ({"version": "²"}, {"page_size": "³"}):
        assert api(grc_token).get(reverse("api:acknowledgements"), params).status_code == 400


def test_hr_s_token_reads_them_as_an_auditor_s_does(api, issue, grc_token, recorded):
    hr = api(issue(service_account("hr-sync@example.com", "HR"), scopes=["evidence:read"]))
    assert hr.get(URL).json() == api(grc_token).get(URL).json()


def test_a_token_outside_the_evidence_readers_sees_no_objection(api, issue, recorded, alice, bob, hilde, web_meta):
    """As for acknowledgements: the pages let an employee read their own objections, a guideline's owner
    those about it, and a manager their reports' status, but none of them is an evidence reader, so none
    of their tokens reads objections through the API, whatever its scopes."""
    owner = service_account("owner@example.com")
    guideline = recorded[0].guideline
    guideline.owner = owner
    guideline.save()
    assert questions.visible_objections(owner).count() == 3  # the owner reads them on the pages
    for person in (alice.user, bob.user):
        person.set_unusable_password()
        person.save()
    tokens = {
        "the employee who objected": issue(alice.user),
        "her manager": issue(bob.user),
        "the guideline's owner": issue(owner),
        "an auditor without the evidence scope": issue(service_account("status@example.com", "Auditors"),
                                                       scopes=["status:read", "reports:request"]),
    }
    for who, token in tokens.items():
        response = api(token).get(URL, {"employee_number": "E0001"})
        assert response.status_code == 403, who
        assert "E0001" not in response.content.decode() and "private accounts" not in response.content.decode()
    # The manager's token still reads what a manager may: the status of the direct reports.
    status = api(tokens["her manager"]).get(reverse("api:version-status", args=[recorded[0].version_id])).json()
    assert status["scope"] == "direct reports"
