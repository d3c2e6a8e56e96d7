"""HR pages: guidelines, drafts, four-eyes review, publication, retirement, exemptions, extensions."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from guidelines import services, status
from guidelines.models import AuditEvent, DueDateExtension, Exemption, Guideline, Version

from ..factories import make_draft, sign_in


def _draft_form(**overrides):
    return {"leading_language": "nl", "effective_date": "", "title_nl": "Richtlijn sociale media",
            "body_nl": "# Richtlijn\n\nWees respectvol.\n", "summary_nl": "", "title_en": "Social media guideline",
            "body_en": "# Guideline\n\nBe respectful.\n", "summary_en": "", **overrides}


@pytest.fixture
def draft(guideline, hilde, version_1):
    return make_draft(guideline, author=hilde)


def _hr_urls(guideline, draft):
    slug = guideline.slug
    return [
        ("get", reverse("guidelines:hr_guidelines")),
        ("get", reverse("guidelines:hr_guideline_new")),
        ("get", reverse("guidelines:hr_guideline", args=[slug])),
        ("get", reverse("guidelines:hr_guideline_edit", args=[slug])),
        ("get", reverse("guidelines:hr_guideline_retire", args=[slug])),
        ("get", reverse("guidelines:hr_draft_new", args=[slug])),
        ("get", reverse("guidelines:hr_draft_edit", args=[draft.pk])),
        ("get", reverse("guidelines:hr_draft_publish", args=[draft.pk])),
        ("post", reverse("guidelines:hr_draft_preview")),
        ("post", reverse("guidelines:hr_exemption_grant", args=[slug])),
        ("post", reverse("guidelines:hr_extension_grant", args=[slug])),
    ]


def test_anonymous_visitors_are_sent_to_login(client, guideline, draft):
    for method, url in [*_hr_urls(guideline, draft), ("get", reverse("guidelines:hr_draft", args=[draft.pk]))]:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url, url


@pytest.mark.parametrize("who", ["alice", "arjen", "nina"])
def test_employees_and_auditors_get_403_on_every_hr_page(request, client_as, guideline, draft, who):
    client = client_as(request.getfixturevalue(who))
    for method, url in [*_hr_urls(guideline, draft), ("get", reverse("guidelines:hr_draft", args=[draft.pk]))]:
        assert getattr(client, method)(url).status_code == 403, url
    assert Version.objects.count() == 2


def test_hr_sees_every_hr_page(client_as, hilde, guideline, draft):
    client = client_as(hilde)
    for method, url in _hr_urls(guideline, draft):
        if method == "get":
            assert client.get(url).status_code == 200, url
    assert client.get(reverse("guidelines:hr_draft", args=[draft.pk])).status_code == 200


def test_approver_may_read_a_draft_but_not_edit_it(client_as, bob, draft):
    client = client_as(bob)
    assert client.get(reverse("guidelines:hr_draft", args=[draft.pk])).status_code == 200
    assert client.get(reverse("guidelines:hr_draft_edit", args=[draft.pk])).status_code == 403


def test_hr_creates_a_guideline_for_selected_departments(client_as, hilde, alice, db):
    response = client_as(hilde).post(reverse("guidelines:hr_guideline_new"), {
        "title_nl": "Schoon bureau", "title_en": "Clean desk", "slug": "clean-desk", "owner_email": "HILDE@example.com",
        "audience_departments": [alice.department.pk], "due_days": "14", "reacknowledge_days": "365",
    })
    assert response.status_code == 302
    guideline = Guideline.objects.get(slug="clean-desk")
    assert (guideline.owner.email, guideline.audience_everyone, guideline.reacknowledge_days) == (
        "hilde@example.com", False, 365)
    assert list(guideline.audience_departments.all()) == [alice.department]
    assert AuditEvent.objects.filter(action="guideline_created", guideline=guideline).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [({"owner_email": "nobody@example.com"}, "no active account"),
     ({"audience_everyone": ""}, "at least one department"),
     ({"slug": "social-media"}, "already exists"),
     ({"due_days": "0"}, "at least one day")],
)
def test_bad_guideline_settings_are_refused(client_as, hilde, guideline, data, message):
    form = {"title_nl": "X", "title_en": "X", "slug": "x",
            "owner_email": "hilde@example.com", "audience_everyone": "on",
            "due_days": "30", **data}
    response = client_as(hilde).post(reverse("guidelines:hr_guideline_new"), form)
    assert response.status_code == 400
    assert message in response.content.decode().lower() or message in response.content.decode()
    assert Guideline.objects.count() == 1


def test_hr_writes_a_draft_and_sees_a_preview_and_the_diff(client_as, hilde, guideline, version_1):
    client = client_as(hilde)
    from ..factories import BODY

    response = client.post(reverse("guidelines:hr_draft_new", args=["social-media"]),
                           _draft_form(body_nl=BODY["nl"],
                                       body_en=BODY["en"].replace("respectful.", "respectful and kind.")))
    draft = Version.objects.get(status="draft")
    assert response.url == reverse("guidelines:hr_draft", args=[draft.pk])
    page = client.get(response.url).content.decode()
    assert "<del>respectful.</del> <ins>respectful and kind.</ins>" in page
    assert "<h1>Guideline</h1>" in page


def test_draft_editor_starts_from_the_current_text(client_as, hilde, version_1):
    page = client_as(hilde).get(reverse("guidelines:hr_draft_new", args=["social-media"])).content.decode()
    assert "Be respectful." in page and "Wees respectvol." in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"body_nl": "   "}, "This field is required."),
     ({"title_nl": ""}, "This field is required."),
     ({"title_en": ""}, "This field is required."),
     ({"effective_date": "2001-01-01"}, "cannot lie in the past")],
)
def test_bad_drafts_are_refused_and_nothing_is_stored(client_as, hilde, version_1, overrides, message):
    response = client_as(hilde).post(reverse("guidelines:hr_draft_new", args=["social-media"]),
                                     _draft_form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Version.objects.filter(status="draft").exists()


def test_live_preview_is_sanitised(client_as, hilde, db):
    response = client_as(hilde).post(reverse("guidelines:hr_draft_preview"),
                                     {"body": "**bold** <script>alert(1)</script> ![x](https://evil.example/x.png)"})
    html = response.content.decode()
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "<img" not in html


def test_editing_an_approved_draft_needs_a_new_approval(client_as, hilde, bob, draft):
    from guidelines import publishing

    publishing.approve_version(version=draft, by=bob.user)
    client_as(hilde).post(reverse("guidelines:hr_draft_edit", args=[draft.pk]), _draft_form())
    draft.refresh_from_db()
    assert (draft.status, draft.approved_by) == ("draft", None)


def test_four_eyes_flow_request_send_back_approve_publish(client, hilde, bob, draft, guideline):
    review = reverse("guidelines:hr_draft_review", args=[draft.pk])
    approve = reverse("guidelines:hr_draft_approve", args=[draft.pk])
    send_back = reverse("guidelines:hr_draft_send_back", args=[draft.pk])
    sign_in(client, hilde)
    client.post(review, {"action": "request"})
    draft.refresh_from_db()
    assert draft.review_requested_at is not None
    assert client.post(review, {"action": "approve"}).status_code == 403  # HR is no approver here
    assert client.post(approve, {"confirm": "on"}).status_code == 403
    sign_in(client, bob.user)
    assert client.post(send_back, {"comment": ""}).status_code == 400
    client.post(send_back, {"comment": "Please mention the reporting desk."})
    draft.refresh_from_db()
    assert (draft.review_requested_at, draft.review_comment) == (None, "Please mention the reporting desk.")
    sign_in(client, hilde)
    client.post(review, {"action": "request"})
    sign_in(client, bob.user)
    page = client.get(reverse("guidelines:hr_draft", args=[draft.pk])).content.decode()
    link = re.search(r'href="(/hr/drafts/\d+/approve/\?fingerprint=[0-9a-f]{64})"', page).group(1)
    confirmation = client.get(link).content.decode()
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]{64})"', confirmation).group(1)
    client.post(approve, {"fingerprint": fingerprint, "confirm": "on"})
    draft.refresh_from_db()
    assert (draft.status, draft.approved_by) == ("approved", bob.user)
    sign_in(client, hilde)
    response = client.post(reverse("guidelines:hr_draft_publish", args=[draft.pk]),
                           {"change": "material", "confirm": "on"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.number) == ("published", "2.0")
    actions = list(AuditEvent.objects.filter(version=draft).order_by("at").values_list("action", flat=True))
    assert actions == ["review_requested", "version_sent_back", "review_requested", "version_approved",
                       "version_published"]


def test_author_cannot_approve_own_draft_on_the_page(client_as, bob, guideline, version_1):
    own = make_draft(guideline, author=bob.user)
    Version.objects.filter(pk=own.pk).update(review_requested_at=timezone.now())
    client = client_as(bob)
    assert client.get(reverse("guidelines:hr_draft_approve", args=[own.pk])).status_code == 403
    response = client.post(reverse("guidelines:hr_draft_approve", args=[own.pk]), {"confirm": "on"})
    assert response.status_code == 403
    own.refresh_from_db()
    assert own.status == "draft"


def test_publish_page_says_how_many_will_be_asked(client_as, hilde, alice, bob, otto, draft, version_1, web_meta):
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    content = client_as(hilde).get(reverse("guidelines:hr_draft_publish", args=[draft.pk])).content.decode()
    assert "3 employees are in scope today. Of them, 1 acknowledged the current version 1.0." in content
    assert "version 2.0: all 3 employees in scope must acknowledge it (again)." in content
    assert "version 1.1: existing acknowledgements carry over" in content
    assert "must be approved by a second person" in content


def test_publishing_an_unapproved_draft_is_refused(client_as, hilde, draft):
    response = client_as(hilde).post(reverse("guidelines:hr_draft_publish", args=[draft.pk]),
                                     {"change": "material", "confirm": "on"})
    assert response.status_code == 400
    assert "approved by a second person" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_editorial_publication_carries_acknowledgements_over(client_as, hilde, bob, alice, draft, version_1,
                                                             web_meta):
    from guidelines import publishing

    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    publishing.approve_version(version=draft, by=bob.user)
    client_as(hilde).post(reverse("guidelines:hr_draft_publish", args=[draft.pk]),
                          {"change": "editorial", "confirm": "on"})
    draft.refresh_from_db()
    assert draft.number == "1.1"
    assert services.current_acknowledgement(employee=alice, guideline=draft.guideline, major=1) is not None


def test_publish_needs_the_confirmation_tick(client_as, hilde, bob, draft):
    from guidelines import publishing

    publishing.approve_version(version=draft, by=bob.user)
    response = client_as(hilde).post(reverse("guidelines:hr_draft_publish", args=[draft.pk]), {"change": "material"})
    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.status == "approved"


def test_retiring_needs_a_reason_and_keeps_the_evidence(client_as, hilde, alice, guideline, version_1, web_meta):
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    client = client_as(hilde)
    url = reverse("guidelines:hr_guideline_retire", args=["social-media"])
    assert client.post(url, {"reason": ""}).status_code == 400
    assert client.post(url, {"reason": "Replaced by the communication policy."}).status_code == 302
    guideline.refresh_from_db()
    version_1.refresh_from_db()
    assert guideline.retired_at is not None and version_1.status == "retired"
    assert alice.acknowledgements.count() == 1
    assert "Nothing to acknowledge" in client_as(alice).get("/").content.decode()


def test_hr_exempts_an_employee_with_a_reason_and_can_revoke(client_as, hilde, alice, guideline, version_1):
    client = client_as(hilde)
    url = reverse("guidelines:hr_exemption_grant", args=["social-media"])
    assert client.post(url, {"employee_number": "E0001", "reason": ""}).status_code == 400
    assert client.post(url, {"employee_number": "NOPE", "reason": "x"}).status_code == 400
    assert client.post(url, {"employee_number": "E0001", "reason": "Long-term leave"}).status_code == 302
    exemption = Exemption.objects.get()
    assert (exemption.employee, exemption.reason, exemption.granted_by) == (alice, "Long-term leave", hilde)
    assert "Long-term leave" in client.get(reverse("guidelines:hr_guideline", args=["social-media"])).content.decode()
    client.post(reverse("guidelines:hr_exemption_revoke", args=[exemption.pk]))
    exemption.refresh_from_db()
    assert exemption.revoked_at is not None
    assert client.post(reverse("guidelines:hr_exemption_revoke", args=[exemption.pk])).status_code == 400
    assert AuditEvent.objects.filter(action__in=["exemption_granted", "exemption_revoked"]).count() == 2


def test_exemption_ending_before_it_starts_is_refused(client_as, hilde, alice, version_1):
    response = client_as(hilde).post(reverse("guidelines:hr_exemption_grant", args=["social-media"]), {
        "employee_number": "E0001", "reason": "Leave", "starts_on": "2027-03-01", "ends_on": "2027-02-01"})
    assert response.status_code == 400
    assert not Exemption.objects.exists()


def test_hr_extends_a_due_date_and_the_employee_sees_it(client_as, hilde, alice, guideline, version_1):
    later = timezone.localdate() + timezone.timedelta(days=90)
    client = client_as(hilde)
    url = reverse("guidelines:hr_extension_grant", args=["social-media"])
    assert client.post(url, {"employee_number": "E0001", "due_date": "2001-01-01", "reason": "x"}).status_code == 400
    assert client.post(url, {"employee_number": "E0001", "due_date": later.isoformat(),
                             "reason": "Parental leave"}).status_code == 302
    assert DueDateExtension.objects.get().due_date == later
    assert status.due_date(alice, version_1) == later
    assert f"Please acknowledge by {later.day} {later:%B %Y}" in client_as(alice).get("/").content.decode()


def test_unknown_guideline_and_draft_are_404(client_as, hilde, db):
    client = client_as(hilde)
    assert client.get("/hr/guidelines/nope/").status_code == 404
    assert client.get("/hr/drafts/999999/").status_code == 404
    assert client.get("/hr/drafts/999999/publish/").status_code == 404


def test_published_version_cannot_be_edited_through_the_editor(client_as, hilde, version_1):
    response = client_as(hilde).post(reverse("guidelines:hr_draft_edit", args=[version_1.pk]), _draft_form())
    assert response.status_code == 302
    version_1.refresh_from_db()
    assert version_1.texts.get(language="en").body.startswith("# Guideline\n\n## Principles")


def test_publishing_runs_the_same_queries_for_a_small_and_a_larger_audience(client_as, hilde, bob, guideline,
                                                                            version_1):
    """No per-employee work in the request: announcements fan out in Celery later."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from guidelines import publishing

    from ..factories import make_employee

    client = client_as(hilde)
    client.get(reverse("guidelines:hr_guidelines"))  # the session's activity stamp is written once a minute
    counts = []
    for size in (0, 40):
        for n in range(size):
            make_employee(f"audience{n}@example.com", f"A{n:04d}")
        draft = make_draft(guideline, author=hilde)
        publishing.approve_version(version=draft, by=bob.user)
        with CaptureQueriesContext(connection) as queries:
            response = client.post(reverse("guidelines:hr_draft_publish", args=[draft.pk]),
                                   {"change": "material", "confirm": "on"})
        assert response.status_code == 302
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]
