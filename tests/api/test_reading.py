"""What the API answers: guidelines and versions with their hashes, status counts equal to the
dashboard's and the auditor pack's, per-employee pages by cursor in constant queries, acknowledgements
with their seals, the chain's last check, auditor packs. A token never sees more than its account's
role: a manager's sees the direct reports only; an account without a role sees nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from guidelines import services
from guidelines.models import Acknowledgement, Report, Version
from guidelines.reports import contents, jobs
from guidelines.status import Status

from ..factories import make_employee, publish, sign_in
from .conftest import service_account


@pytest.fixture
def staff(alice, bob, otto):
    """Alice reports to Bob; Otto is in Finance; and three more in Operations."""
    return [alice, bob, otto] + [make_employee(f"e{n}@example.com", f"E01{n:02d}") for n in range(3)]


@pytest.fixture
def acknowledged(staff, version_1, web_meta):
    """Alice and Otto acknowledged version 1.0."""
    for employee in (staff[0], staff[2]):
        services.acknowledge(employee=employee, version=version_1, language="en", meta=web_meta)
    return version_1


def test_guidelines_with_their_current_version(api, grc_token, version_1):
    [guideline] = api(grc_token).get(reverse("api:guidelines")).json()
    assert guideline["slug"] == "social-media" and guideline["title_nl"] == "Richtlijn sociale media"
    assert guideline["current_version"]["id"] == version_1.pk and guideline["current_version"]["number"] == "1.0"
    detail = api(grc_token).get(reverse("api:guideline", args=["social-media"])).json()
    assert detail == guideline
    assert api(grc_token).get(reverse("api:guideline", args=["nope"])).status_code == 404


def test_versions_carry_their_texts_and_hashes(api, grc_token, version_1, hilde, bob):
    version_2 = publish(version_1.guideline, author=hilde, approver=bob.user,
                        bodies={"nl": "# Nieuw\n\nAnders.\n", "en": "# New\n\nDifferent.\n"})
    versions = api(grc_token).get(reverse("api:guideline-versions", args=["social-media"])).json()
    assert [v["number"] for v in versions] == ["2.0", "1.0"]
    assert [v["status"] for v in versions] == ["published", "superseded"]
    texts = {text.language: text for text in version_2.texts.all()}
    assert {t["language"]: t["content_hash"] for t in versions[0]["texts"]} == {
        language: text.content_hash for language, text in texts.items()}
    assert versions[0]["texts"][0]["body"] == texts["en"].body
    assert api(grc_token).get(reverse("api:version", args=[version_2.pk])).json() == versions[0]


def test_a_version_carries_the_works_council_consent_it_was_published_with(api, grc_token, version_1, hilde, bob):
    from datetime import datetime

    from guidelines import publishing

    from ..factories import make_draft

    guideline = version_1.guideline
    guideline.requires_works_council_consent = True
    guideline.save()
    draft = make_draft(guideline, author=hilde, bodies={"nl": "# Nieuw\n\nAnders.\n", "en": "# New\n\nOther.\n"})
    day = timezone.localdate() - timedelta(days=4)
    publishing.record_works_council_consent(version=draft, by=hilde, consented_on=day, reference="OR-2026-14")
    publishing.approve_version(version=draft, by=bob.user)
    version_2 = publishing.publish_version(version=draft, by=hilde, material=True)

    versions = api(grc_token).get(reverse("api:guideline-versions", args=["social-media"])).json()
    consent = versions[0]["works_council_consent"]
    assert (consent["consented_on"], consent["reference"]) == (day.isoformat(), "OR-2026-14")
    assert datetime.fromisoformat(consent["recorded_at"]) == version_2.works_council_recorded_at
    assert versions[1]["works_council_consent"] is None  # 1.0, published before the requirement
    assert api(grc_token).get(reverse("api:version", args=[version_2.pk])).json() == versions[0]
    assert api(grc_token).get(reverse("api:guideline", args=["social-media"])).json()[
        "requires_works_council_consent"] is True


def test_a_draft_is_not_in_the_api(api, grc_token, version_1, hilde):
    from ..factories import make_draft

    draft = make_draft(version_1.guideline, author=hilde)
    assert api(grc_token).get(reverse("api:version", args=[draft.pk])).status_code == 404
    assert api(grc_token).get(reverse("api:version-status", args=[draft.pk])).status_code == 404


def test_status_counts_equal_the_dashboard_and_the_auditor_pack(api, grc_token, acknowledged, hilde, client, staff):
    version = acknowledged
    answer = api(grc_token).get(reverse("api:version-status", args=[version.pk])).json()
    assert answer["counts"]["in_scope"] == 6 and answer["counts"]["acknowledged"] == 2
    assert answer["scope"] == "everyone"
    # The dashboard HR sees.
    sign_in(client, hilde)
    summary = client.get(reverse("guidelines:dashboard_guideline", args=["social-media"])).context["summary"]
    for name in ("in_scope", "acknowledged", "pending", "overdue", "exempt"):
        assert answer["counts"][name] == getattr(summary.counts, name)
    assert [(d["department"], d["counts"]["in_scope"]) for d in answer["departments"]] == [
        (row.name, row.counts.in_scope) for row in summary.departments]
    # The auditor pack's rows for the same version and day.
    pack = contents.parse_pack(guideline_slug="social-media", version="1.0", as_of=answer["as_of"])
    statuses = [row["status"] for row in contents.employee_rows(pack, version)]
    for name in Status.values:
        assert answer["counts"][name] == statuses.count(name)


def test_status_as_of_a_past_day(api, issue, grc, acknowledged, staff):
    grc_token = issue(grc, days=60)
    later = timezone.now() + timedelta(days=40)  # past the due date (30 days)
    with time_machine.travel(later):
        services.acknowledge(employee=staff[3], version=acknowledged, language="en", meta=services.RequestMeta(
            channel="web", auth_method="password", ip_address="10.0.0.1", user_agent="t"))
        client = api(grc_token)
        now = client.get(reverse("api:version-status", args=[acknowledged.pk])).json()
        then = client.get(reverse("api:version-status", args=[acknowledged.pk]),
                          {"as_of": timezone.localdate(acknowledged.published_at).isoformat()}).json()
    assert (now["counts"]["acknowledged"], then["counts"]["acknowledged"]) == (3, 2)
    assert now["counts"]["overdue"] == 3 and then["counts"]["overdue"] == 0


@pytest.mark.parametrize(("as_of", "message"), [
    ("2026-13-01", "Give a date as YYYY-MM-DD."), ("tomorrow", "Give a date as YYYY-MM-DD."),
    ("2999-01-01", "The date cannot be in the future."), ("2000-01-01", "Version 1.0 was published on"),
])
def test_a_bad_as_of_day_is_a_400_that_says_why(api, grc_token, version_1, as_of, message):
    response = api(grc_token).get(reverse("api:version-status", args=[version_1.pk]), {"as_of": as_of})
    assert response.status_code == 400 and response.json()["as_of"][0].startswith(message)


def test_the_employee_list_pages_by_cursor_in_constant_queries(
        api, grc_token, acknowledged, staff, django_assert_max_num_queries):
    client, seen, url, params = api(grc_token), [], reverse("api:version-employees", args=[acknowledged.pk]), {
        "page_size": 2}
    client.get(url, params)  # the process's first request reads the permission names (accounts.PermissionNames)
    while url:
        with django_assert_max_num_queries(4):  # the token with its permissions, its last use, version, page
            page = client.get(url, params).json()
        seen += page["results"]
        url, params = page["next"], None
    assert [row["employee_number"] for row in seen] == sorted(e.employee_number for e in staff)
    by_number = {row["employee_number"]: row for row in seen}
    assert by_number["E0001"]["status"] == "acknowledged" and by_number["E0001"]["version_acknowledged"] == "1.0"
    assert by_number["E0002"]["status"] == "pending" and by_number["E0002"]["acknowledged_at"] is None
    assert by_number["E0001"]["manager_employee_number"] == "E0002" and by_number["E0099"]["department"] == "Finance"


def test_the_employee_list_filters_like_the_dashboard(api, grc_token, acknowledged, staff):
    url = reverse("api:version-employees", args=[acknowledged.pk])
    acknowledged_only = api(grc_token).get(url, {"status": "acknowledged"}).json()["results"]
    assert [row["employee_number"] for row in acknowledged_only] == ["E0001", "E0099"]
    finance = staff[2].department_id
    assert [r["employee_number"] for r in api(grc_token).get(url, {"department": finance}).json()["results"]] == [
        "E0099"]
    assert [r["employee_number"] for r in api(grc_token).get(url, {"search": "alice"}).json()["results"]] == ["E0001"]


def test_the_list_follows_each_change_of_the_guideline_s_settings(api, grc_token, acknowledged, staff, otto):
    """The page's query is compiled once per version, day, filters and settings (status.query_inputs):
    a change of due days or audience between two requests of the same page is a new query, and every
    answer equals the dashboard's list."""
    from guidelines import dashboards

    guideline, url = acknowledged.guideline, reverse("api:version-employees", args=[acknowledged.pk])

    def both():
        pages = [api(grc_token).get(url, {"page_size": 2}).json()]
        while pages[-1]["next"]:
            pages.append(api(grc_token).get(pages[-1]["next"]).json())
        listed = [(row["employee_number"], row["status"]) for page in pages for row in page["results"]]
        day = timezone.localdate()
        version = Version.objects.select_related("guideline").get(pk=acknowledged.pk)
        dashboard = dashboards.employee_list(version, day).order_by("employee_number")
        assert listed == [(row.employee_number, row.status) for row in dashboard]
        return dict(listed)

    with time_machine.travel(timezone.now() + timedelta(days=5)):
        assert both()["E0100"] == "pending"
        guideline.due_days = 1
        guideline.save()
        assert both()["E0100"] == "overdue"
        guideline.audience_everyone = False
        guideline.save()
        guideline.audience_departments.add(otto.department)
        assert both() == {"E0099": "acknowledged"}


@pytest.mark.parametrize("params", [{"status": "asleep"}, {"department": "Finance"}, {"page_size": "0"},
                                    {"page_size": "1001"}, {"cursor": "not-a-cursor"}, {"cursor": "eyJhZnRlciI6IDF9"},
                                    {"cursor": "eyJhZnRlciI6ICJcdTAwMDAifQ"}])
def test_bad_list_parameters_are_a_400(api, grc_token, version_1, params):
    response = api(grc_token).get(reverse("api:version-employees", args=[version_1.pk]), params)
    assert response.status_code == 400 and set(response.json()) == set(params)


def test_a_manager_s_token_sees_the_direct_reports_only(api, issue, acknowledged, staff):
    bob = staff[1]
    bob.user.set_unusable_password()
    bob.user.save()
    client = api(issue(bob.user, scopes=["status:read", "evidence:read"]))
    answer = client.get(reverse("api:version-status", args=[acknowledged.pk])).json()
    assert answer["scope"] == "direct reports" and answer["counts"]["in_scope"] == 1
    rows = client.get(reverse("api:version-employees", args=[acknowledged.pk])).json()["results"]
    assert [row["employee_number"] for row in rows] == ["E0001"]
    published_on = timezone.localdate(acknowledged.published_at).isoformat()
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        past = client.get(reverse("api:version-status", args=[acknowledged.pk]), {"as_of": published_on})
    assert past.status_code == 403 and past.json()["detail"] == "Managers see today's status only."
    # An approver and manager is no evidence reader: the scope alone does not open the evidence.
    assert client.get(reverse("api:acknowledgements")).status_code == 403


def test_an_account_without_a_role_sees_no_status(api, issue, version_1, otto):
    otto.user.set_unusable_password()
    otto.user.save()
    client = api(issue(otto.user))
    assert client.get(reverse("api:version-status", args=[version_1.pk])).status_code == 403
    assert client.get(reverse("api:version-employees", args=[version_1.pk])).status_code == 403
    assert client.get(reverse("api:acknowledgements")).status_code == 403
    assert client.post(reverse("api:reports"), {"guideline": "social-media"}, content_type="application/json"
                       ).status_code == 403
    assert not Report.objects.exists()


def test_acknowledgements_in_chain_order_with_their_seals(api, grc_token, acknowledged, django_assert_max_num_queries):
    records = list(Acknowledgement.objects.order_by("sequence"))
    client = api(grc_token)
    with django_assert_max_num_queries(3):  # the token with its permissions, its last use, the page
        first = client.get(reverse("api:acknowledgements"), {"page_size": 1}).json()
    second = client.get(first["next"]).json()
    assert second["next"] is None
    rows = first["results"] + second["results"]
    assert [(r["sequence"], r["seal"], r["previous_seal"]) for r in rows] == [
        (a.sequence, a.seal, a.previous_seal) for a in records]
    assert rows[1]["previous_seal"] == rows[0]["seal"] and rows[0]["version"] == "1.0"
    only_otto = client.get(reverse("api:acknowledgements"), {"employee_number": "E0099"}).json()["results"]
    assert [r["employee_name"] for r in only_otto] == ["Otto Example"]
    assert client.get(reverse("api:acknowledgements"), {"version": "x"}).status_code == 400


def test_the_chain_s_last_check(api, grc_token, acknowledged):
    client = api(grc_token)
    never = client.get(reverse("api:chain-verification")).json()
    assert never["verified_at"] is None and never["current_head_sequence"] == 2
    result = services.verify_evidence()
    checked = client.get(reverse("api:chain-verification")).json()
    assert checked["intact"] is True and checked["checked"] == result.checked == 2
    assert checked["head_seal"] == Acknowledgement.objects.get(sequence=2).seal


def test_an_auditor_pack_is_requested_then_fetched(api, grc_token, acknowledged, settings, tmp_path):
    settings.REPORTS_DIR = tmp_path
    client = api(grc_token)
    requested = client.post(reverse("api:reports"), {"guideline": "social-media", "language": "nl"},
                            content_type="application/json")
    assert requested.status_code == 202
    code = requested.json()["code"]
    assert requested["Location"].endswith(f"/api/v1/reports/{code}/") and requested.json()["status"] == "queued"
    assert client.get(reverse("api:report-pdf", args=[code])).status_code == 409
    report = Report.objects.get(verification_code=code)
    assert report.requested_by.email == "grc@example.com" and report.parameters["language"] == "nl"
    jobs.generate_now(report)  # what the worker's task does
    ready = client.get(reverse("api:report", args=[code])).json()
    assert ready["status"] == "done" and ready["download"].endswith(f"/api/v1/reports/{code}/pdf/")
    pdf = client.get(ready["download"])
    body = b"".join(pdf.streaming_content)
    assert pdf["Content-Type"] == "application/pdf" and body.startswith(b"%PDF")
    import hashlib

    assert hashlib.sha256(body).hexdigest() == ready["sha256"]
    assert [r["code"] for r in client.get(reverse("api:reports")).json()] == [code]


def test_a_pack_request_with_bad_choices_says_which(api, grc_token, version_1):
    client = api(grc_token)
    unknown = client.post(reverse("api:reports"), {"guideline": "nope"}, content_type="application/json")
    assert unknown.status_code == 400 and "guideline" in unknown.json()
    wrong_version = client.post(reverse("api:reports"), {"guideline": "social-media", "version": "9.0"},
                                content_type="application/json")
    assert wrong_version.status_code == 400 and "version" in wrong_version.json()
    not_json = client.post(reverse("api:reports"), "guideline=x", content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 415
    assert not Report.objects.exists()


def test_another_account_s_pack_is_not_found(api, issue, grc_token, version_1, arjen):
    report = jobs.start_audit_pack(user=arjen, guideline_slug="social-media")
    other = service_account("other@example.com", "Auditors")
    for token in (grc_token, issue(other)):
        assert api(token).get(reverse("api:report", args=[report.verification_code])).status_code == 404
    assert api(grc_token).get(reverse("api:report", args=["\x00"])).status_code == 404


def test_pack_requests_have_their_own_rate(api, grc_token, version_1, settings, fresh_rate_limits):
    settings.API_REPORT_RATE = (2, 3600)
    client = api(grc_token)
    answers = [client.post(reverse("api:reports"), {"guideline": "social-media"}, content_type="application/json")
               for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert client.get(reverse("api:reports")).status_code == 200  # reading is not limited by it
    assert Version.objects.count() == 1 and Report.objects.count() == 2
