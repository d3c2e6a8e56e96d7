"""Dashboards: who is in scope, where each of them stands, the pages, the CSV export and the query budget."""

import csv
import io
from datetime import datetime, time, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from guidelines import dashboards, publishing, services
from guidelines.models import DueDateExtension

from .factories import make_draft, make_employee, make_guideline, publish


def publish_days_ago(guideline, days, *, hilde, bob, material=True):
    """A version published `days` days ago (publication may be backdated; acknowledgements may not)."""
    at = timezone.now() - timedelta(days=days)
    version = make_draft(guideline, author=hilde)
    publishing.approve_version(version=version, by=bob.user, at=at)
    return publishing.publish_version(version=version, by=hilde, material=material, at=at)


def acknowledge(employee, version, meta, *, at=None):
    """Acknowledge now, or at `at` with the clock moved there."""
    if at is None:
        return services.acknowledge(employee=employee, version=version, language="en", meta=meta)[0]
    with mock.patch("django.utils.timezone.now", return_value=at):
        return services.acknowledge(employee=employee, version=version, language="en", meta=meta)[0]


def statuses(version, day=None):
    day = day or timezone.localdate()
    return dict(dashboards.employee_list(version, day).values_list("employee_number", "status"))


def row(version, employee, day=None):
    return dashboards.employee_list(version, day or timezone.localdate()).get(pk=employee.pk)


def noon(day):
    return timezone.make_aware(datetime.combine(day, time(12)))


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def old_version(guideline, hilde, bob):
    """Published 40 days ago, so its 30-day due date has passed."""
    return publish_days_ago(guideline, 40, hilde=hilde, bob=bob)


# Status ---------------------------------------------------------------------------------------


def test_acknowledged_employee_is_acknowledged_with_the_time(alice, bob, version_1, web_meta):
    ack = acknowledge(alice, version_1, web_meta)
    assert statuses(version_1) == {"E0001": "acknowledged", "E0002": "pending"}
    assert row(version_1, alice).acknowledged_at == ack.acknowledged_at


def test_acknowledgement_carries_over_to_an_editorial_minor_but_not_to_a_new_major(
    alice, bob, hilde, guideline, version_1, web_meta
):
    acknowledge(alice, version_1, web_meta)
    editorial = publish(guideline, author=hilde, approver=bob.user, material=False)
    assert editorial.number == "1.1"
    assert statuses(editorial)["E0001"] == "acknowledged"
    material = publish(guideline, author=hilde, approver=bob.user)
    assert statuses(material)["E0001"] == "pending"


def test_pending_until_the_due_date_then_overdue(alice, old_version, guideline, today):
    due = timezone.localdate(old_version.published_at) + timedelta(days=30)
    assert row(old_version, alice).due_date == due
    assert statuses(old_version, due)["E0001"] == "pending"
    assert statuses(old_version, due + timedelta(days=1))["E0001"] == "overdue"
    assert statuses(old_version)["E0001"] == "overdue"


def test_an_acknowledgement_made_after_the_day_does_not_count_on_that_day(alice, version_1, web_meta, today):
    acknowledge(alice, version_1, web_meta)
    assert statuses(version_1, today - timedelta(days=1))["E0001"] == "pending"
    assert statuses(version_1, today + timedelta(days=1))["E0001"] == "acknowledged"


def test_exempt_employee_is_exempt_even_when_overdue(alice, bob, hilde, guideline, old_version, today):
    services.grant_exemption(employee=alice, guideline=guideline, by=hilde, reason="Long-term leave")
    assert statuses(old_version) == {"E0001": "exempt", "E0002": "overdue"}
    assert statuses(old_version, today - timedelta(days=1))["E0001"] == "overdue"


def test_an_ended_exemption_no_longer_counts(alice, hilde, guideline, old_version, today):
    services.grant_exemption(employee=alice, guideline=guideline, by=hilde, reason="Leave",
                             starts_on=today - timedelta(days=10), ends_on=today - timedelta(days=1))
    assert statuses(old_version)["E0001"] == "overdue"
    assert statuses(old_version, today - timedelta(days=1))["E0001"] == "exempt"


def test_extension_moves_the_due_date_and_the_latest_one_counts(alice, hilde, old_version, today):
    services.extend_due_date(employee=alice, version=old_version, by=hilde, due_date=today + timedelta(days=5),
                             reason="Back from leave")
    assert (row(old_version, alice).status, row(old_version, alice).due_date) == ("pending", today + timedelta(days=5))
    services.extend_due_date(employee=alice, version=old_version, by=hilde, due_date=today + timedelta(days=9),
                             reason="Longer leave")
    assert row(old_version, alice).due_date == today + timedelta(days=9)
    # The latest granted extension wins, not the latest date.
    DueDateExtension.objects.create(employee=alice, guideline=old_version.guideline, major=1, reason="Earlier",
                                    due_date=today + timedelta(days=60), granted_by=hilde,
                                    granted_at=timezone.now() - timedelta(days=1))
    assert row(old_version, alice).due_date == today + timedelta(days=9)
    assert statuses(old_version, today + timedelta(days=10))["E0001"] == "overdue"


def test_joiner_due_date_counts_from_the_start_date(alice, bob, hilde, guideline, today):
    version = publish_days_ago(guideline, 20, hilde=hilde, bob=bob)
    alice.start_date = today - timedelta(days=5)
    alice.save()
    assert row(version, alice).due_date == today + timedelta(days=25)
    assert row(version, bob).due_date == today + timedelta(days=10)
    assert statuses(version, today + timedelta(days=11)) == {"E0001": "pending", "E0002": "overdue"}
    assert statuses(version, today + timedelta(days=26)) == {"E0001": "overdue", "E0002": "overdue"}


def test_leavers_inactive_accounts_and_future_joiners_are_out_of_scope(alice, bob, otto, version_1, today):
    alice.end_date = today
    alice.save()
    otto.start_date = today + timedelta(days=1)
    otto.save()
    bob.user.is_active = False
    bob.user.save()
    carol = make_employee("carol@example.com", "E0003")
    carol.end_date = today + timedelta(days=1)
    carol.save()
    assert statuses(version_1) == {"E0003": "pending"}
    assert statuses(version_1, today + timedelta(days=1)) == {"E0099": "pending"}


def test_employees_outside_the_audience_are_not_counted(alice, bob, otto, guideline, version_1, today):
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.add(alice.department)
    assert set(statuses(version_1)) == {"E0001", "E0002"}
    traders, sales = Group.objects.create(name="Traders"), Group.objects.create(name="Sales")
    guideline.audience_groups.add(traders, sales)
    otto.user.groups.add(traders, sales)
    assert set(statuses(version_1)) == {"E0001", "E0002", "E0099"}
    assert dashboards.summary(version_1, today).counts.in_scope == 3  # in two audience groups, counted once


def test_reacknowledgement_interval_expires_acknowledgements(alice, guideline, version_1, web_meta, today):
    guideline.reacknowledge_days = 365
    guideline.save()
    acknowledge(alice, version_1, web_meta, at=timezone.now() - timedelta(days=400))
    assert statuses(version_1)["E0001"] == "pending"
    assert statuses(version_1, today - timedelta(days=100))["E0001"] == "acknowledged"
    second = acknowledge(alice, version_1, web_meta)
    assert second.cycle == 2
    assert statuses(version_1)["E0001"] == "acknowledged"
    assert row(version_1, alice).acknowledged_at == second.acknowledged_at
    assert dashboards.summary(version_1, today).trend[-1].acknowledged == 1


def test_retired_guideline_has_nobody_in_scope(alice, hilde, guideline, version_1, web_meta, today):
    acknowledge(alice, version_1, web_meta)
    publishing.retire_guideline(guideline=guideline, by=hilde, reason="Replaced")
    version_1.refresh_from_db()
    assert statuses(version_1) == {}
    assert dashboards.summary(version_1, today).counts.in_scope == 0


# Counts, departments and trend -------------------------------------------------------------------


def test_counts_and_department_breakdown(alice, bob, otto, hilde, guideline, old_version, web_meta, today):
    acknowledge(alice, old_version, web_meta)
    services.grant_exemption(employee=otto, guideline=guideline, by=hilde, reason="Leave")
    joiner = make_employee("jo@example.com", "E0100", department="Finance")
    joiner.start_date = today - timedelta(days=2)
    joiner.save()
    make_employee("nodept@example.com", "E0101", department=None)

    summary = dashboards.summary(old_version, today)

    assert (summary.counts.in_scope, summary.counts.acknowledged, summary.counts.pending, summary.counts.overdue,
            summary.counts.exempt) == (5, 1, 1, 2, 1)
    assert summary.counts.acknowledged_percent == 20.0
    assert [(d.name, d.counts.in_scope, d.counts.acknowledged, d.counts.pending, d.counts.overdue, d.counts.exempt)
            for d in summary.departments] == [
        ("Finance", 2, 0, 1, 0, 1), ("Operations", 2, 1, 0, 1, 0), (None, 1, 0, 0, 1, 0),
    ]
    assert dashboards.version_counts([old_version], today) == {old_version.pk: summary.counts}


def test_trend_runs_from_publication_to_today_and_ends_at_the_acknowledged_rate(
    alice, bob, otto, hilde, guideline, web_meta, today
):
    version = publish_days_ago(guideline, 3, hilde=hilde, bob=bob)
    acknowledge(alice, version, web_meta, at=noon(today - timedelta(days=2)))
    acknowledge(bob, version, web_meta)

    trend = dashboards.summary(version, today).trend

    assert [point.day for point in trend] == [today - timedelta(days=n) for n in (3, 2, 1, 0)]
    assert [point.acknowledged for point in trend] == [0, 1, 1, 2]
    assert [round(point.percent, 1) for point in trend] == [0.0, 33.3, 33.3, 66.7]
    assert [point.day for point in dashboards.trend_changes(trend)] == [today - timedelta(days=n) for n in (3, 2, 0)]
    chart = dashboards.trend_chart(trend)
    assert len(chart["line"].split()) == 4
    zero = next(line["y"] for line in chart["grid"] if line["label"] == "0 %")
    assert chart["line"].startswith(f"{chart['left']}.0,{zero} ")  # 0 % on the first day, at the bottom left


# The employee list -----------------------------------------------------------------------------------


@pytest.fixture
def staff(db, bob):
    """Sixty employees in two departments, besides Bob."""
    people = []
    for n in range(60):
        department = "Sales" if n % 3 == 0 else "Support"
        person = make_employee(f"person{n:02d}@example.com", f"P{n:03d}", department=department)
        person.user.last_name = f"Name{n:02d}"
        person.user.save()
        people.append(person)
    return people


def test_list_is_filtered_searched_and_paginated(client_as, hilde, staff, version_1, web_meta):
    acknowledge(staff[3], version_1, web_meta)
    client = client_as(hilde)
    url = reverse("guidelines:dashboard_guideline", args=["social-media"])

    page = client.get(url).context["page"]
    assert (page.paginator.count, len(page.object_list), page.paginator.num_pages) == (61, 50, 2)
    assert [e.employee_number for e in page.object_list[:2]] == ["E0002", "P000"]  # Example, then Name00
    assert len(client.get(url, {"page": "2"}).context["page"].object_list) == 11

    acknowledged = client.get(url, {"status": "acknowledged"}).context["page"]
    assert [e.employee_number for e in acknowledged.object_list] == ["P003"]
    sales = staff[0].department
    in_sales = client.get(url, {"department": sales.pk, "status": "pending"}).context["page"]
    assert in_sales.paginator.count == 19 and {e.department_id for e in in_sales.object_list} == {sales.pk}
    for term in ("name07", "p007", "PERSON07@"):
        found = client.get(url, {"search": term}).context["page"]
        assert [e.employee_number for e in found.object_list] == ["P007"], term
    assert client.get(url, {"search": "Person07 Name07"}).context["page"].paginator.count == 1


def test_list_sorts_by_name_or_due_date(client_as, hilde, alice, bob, guideline, today):
    version = publish_days_ago(guideline, 10, hilde=hilde, bob=bob)
    alice.start_date = today - timedelta(days=1)
    alice.save()
    client = client_as(hilde)
    url = reverse("guidelines:dashboard_guideline", args=["social-media"])
    by_name = client.get(url).context["page"].object_list
    by_due = client.get(url, {"sort": "due_date"}).context["page"].object_list
    assert [e.employee_number for e in by_name] == ["E0001", "E0002"]  # Alice, then Bob
    assert [e.employee_number for e in by_due] == ["E0002", "E0001"]  # Alice joined later
    assert by_due[0].due_date == timezone.localdate(version.published_at) + timedelta(days=30)


def test_dashboard_page_shows_counts_departments_trend_and_list(client_as, hilde, alice, bob, version_1, web_meta):
    acknowledge(alice, version_1, web_meta)
    page = client_as(hilde).get(reverse("guidelines:dashboard_guideline", args=["social-media"])).content.decode()
    assert "Social media guideline" in page and "50.0 %" in page
    assert 'role="img"' in page and "<polyline" in page and "<details>" in page
    assert "Operations" in page and "alice@example.com" in page and "Last reminder" in page
    assert "export.csv" in page


# CSV export ------------------------------------------------------------------------------------------


def _csv(response):
    assert isinstance(response, StreamingHttpResponse)
    content = b"".join(response.streaming_content).decode("utf-8")
    assert content.startswith("\ufeff")
    return list(csv.reader(io.StringIO(content[1:])))


def test_csv_export_streams_the_list_with_a_bom_for_excel(client_as, hilde, alice, bob, version_1, web_meta, today):
    ack = acknowledge(alice, version_1, web_meta)
    response = client_as(hilde).get(reverse("guidelines:dashboard_export", args=["social-media"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="social-media-1.0-{today.isoformat()}.csv"'
    rows = _csv(response)
    assert rows[0] == dashboards.EXPORT_COLUMNS
    due = (timezone.localdate(version_1.published_at) + timedelta(days=30)).isoformat()
    acknowledged_at = timezone.localtime(ack.acknowledged_at).isoformat(timespec="seconds")
    assert rows[1:] == [
        ["E0001", "Alice Example", "alice@example.com", "Operations", "E0002", "acknowledged", due, acknowledged_at,
         "1.0", "en", "web"],
        ["E0002", "Bob Example", "bob@example.com", "Operations", "", "pending", due, "", "", "", ""],
    ]
    assert acknowledged_at[-6:] in ("+01:00", "+02:00")  # Europe/Amsterdam


def test_csv_export_respects_the_filters_and_the_version(client_as, arjen, alice, bob, hilde, guideline, version_1,
                                                          web_meta):
    acknowledge(alice, version_1, web_meta)
    publish(guideline, author=hilde, approver=bob.user, material=False)
    url = reverse("guidelines:dashboard_export", args=["social-media"])
    client = client_as(arjen)
    assert [r[0] for r in _csv(client.get(url, {"status": "pending"}))[1:]] == ["E0002"]
    assert [r[0] for r in _csv(client.get(url, {"search": "alice"}))[1:]] == ["E0001"]
    response = client.get(url, {"version": "1.0"})
    assert "social-media-1.0-" in response["Content-Disposition"]
    current = _csv(client.get(url))
    assert current[1][8] == "1.0"  # acknowledged 1.0, which counts for 1.1


# Roles and bad input ---------------------------------------------------------------------------------


@pytest.fixture
def urls(version_1):
    return {
        "overview": reverse("guidelines:dashboard_overview"),
        "guideline": reverse("guidelines:dashboard_guideline", args=["social-media"]),
        "export": reverse("guidelines:dashboard_export", args=["social-media"]),
        "team": reverse("guidelines:team"),
    }


ROLE_MATRIX = {
    "alice": {"overview": 403, "guideline": 403, "export": 403, "team": 403},
    "bob": {"overview": 403, "guideline": 403, "export": 403, "team": 200},
    "hilde": {"overview": 200, "guideline": 200, "export": 200, "team": 403},
    "arjen": {"overview": 200, "guideline": 200, "export": 200, "team": 403},
    "nina": {"overview": 403, "guideline": 403, "export": 403, "team": 403},
}


def test_anonymous_visitors_are_sent_to_login(client, urls):
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url, name


@pytest.mark.parametrize("who", ROLE_MATRIX)
def test_role_matrix(request, client_as, alice, urls, who):
    client = client_as(request.getfixturevalue(who))
    for name, url in urls.items():
        assert client.get(url).status_code == ROLE_MATRIX[who][name], name


def test_wrong_role_gets_a_message(client_as, alice, urls):
    client = client_as(alice)
    assert "The dashboards are for HR and auditors." in client.get(urls["overview"]).content.decode()
    assert "nobody reports to you" in client.get(urls["team"]).content.decode()


def test_manager_sees_only_direct_reports(client_as, alice, bob, otto, version_1, web_meta):
    acknowledge(alice, version_1, web_meta)
    response = client_as(bob).get(reverse("guidelines:team"))
    assert [e.employee_number for e in response.context["page"].object_list] == ["E0001"]
    assert response.context["summary"].counts.acknowledged == 1
    page = response.content.decode()
    assert "alice@example.com" in page and "otto@example.com" not in page and "bob@example.com" not in page


def test_overview_lists_current_and_retired_guidelines(client_as, hilde, alice, bob, version_1, web_meta):
    acknowledge(alice, version_1, web_meta)
    old = make_guideline(hilde, slug="old-policy")
    publish(old, author=hilde, approver=bob.user)
    publishing.retire_guideline(guideline=old, by=hilde, reason="Replaced")
    make_guideline(hilde, slug="upcoming")
    response = client_as(hilde).get(reverse("guidelines:dashboard_overview"))
    rows = {row["guideline"].slug: row for row in response.context["rows"]}
    assert set(rows) == {"social-media", "upcoming"}
    assert (rows["social-media"]["counts"].in_scope, rows["social-media"]["counts"].acknowledged) == (2, 1)
    assert rows["upcoming"]["version"] is None
    assert [g.slug for g in response.context["retired"]] == ["old-policy"]
    assert "No published version yet." in response.content.decode()


@pytest.mark.parametrize(("query", "status"), [
    ({"version": "9.9"}, 404),
    ({"version": "latest"}, 404),
    ({"status": "done"}, 400),
    ({"department": "Sales"}, 400),
    ({"sort": "salary"}, 400),
    ({"search": "x" * 101}, 400),
    ({"page": "abc"}, 200),
    ({"page": "-1"}, 200),
    ({"page": "99999"}, 200),
    ({"department": "999999"}, 200),
])
def test_bad_input_is_a_clear_4xx_or_ignored(client_as, hilde, version_1, query, status):
    client = client_as(hilde)
    for name in ("dashboard_guideline", "dashboard_export"):
        if name == "dashboard_export" and "page" in query:
            continue
        response = client.get(reverse(f"guidelines:{name}", args=["social-media"]), query)
        assert response.status_code == status, (name, query)
        if status == 400:
            assert "cannot be filtered that way" in response.content.decode()


def test_unknown_guideline_or_version_is_404_with_a_message(client_as, hilde, alice, bob, guideline, version_1):
    client = client_as(hilde)
    assert client.get(reverse("guidelines:dashboard_guideline", args=["nope"])).status_code == 404
    assert client.get(reverse("guidelines:dashboard_export", args=["nope"])).status_code == 404
    response = client.get(reverse("guidelines:dashboard_guideline", args=["social-media"]), {"version": "3.0"})
    assert "This guideline has no published version 3.0." in response.content.decode()
    make_guideline(hilde, slug="drafts-only")
    assert client.get(reverse("guidelines:dashboard_guideline", args=["drafts-only"])).status_code == 404
    assert client_as(bob).get(reverse("guidelines:team"), {"guideline": "nope"}).status_code == 404


def test_older_versions_are_selectable(client_as, hilde, alice, bob, guideline, version_1, web_meta):
    acknowledge(alice, version_1, web_meta)
    publish(guideline, author=hilde, approver=bob.user)
    client = client_as(hilde)
    url = reverse("guidelines:dashboard_guideline", args=["social-media"])
    assert client.get(url).context["summary"].counts.acknowledged == 0
    response = client.get(url, {"version": "1.0"})
    assert response.context["summary"].counts.acknowledged == 1
    page = response.content.decode()
    assert "is no longer current" in page
    assert '<input type="hidden" name="version" value="1.0">' in page  # the filters keep the version


# Query budget ------------------------------------------------------------------------------------------


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200, url
    return len(captured)


def _grow(*, employees, versions, guideline, hilde, bob, web_meta, start):
    for n in range(start, start + employees):
        employee = make_employee(f"grow{n}@example.com", f"G{n:04d}", manager=bob,
                                 department="Sales" if n % 2 else "Support")
        if n % 3 == 0:
            services.grant_exemption(employee=employee, guideline=guideline, by=hilde, reason="Leave")
    for _ in range(versions):
        version = publish(guideline, author=hilde, approver=bob.user)
    for employee in list(bob.direct_reports.all())[::2]:
        acknowledge(employee, version, web_meta)
    return version


@pytest.mark.parametrize("page", ["overview", "guideline", "guideline_filtered", "export", "team"])
def test_pages_run_the_same_number_of_queries_at_two_sizes(
    client_as, hilde, bob, guideline, web_meta, django_assert_max_num_queries, page
):
    """10 employees and 1 version, then 60 employees and 5 versions (and a second guideline)."""
    urls = {
        "overview": reverse("guidelines:dashboard_overview"),
        "guideline": reverse("guidelines:dashboard_guideline", args=["social-media"]),
        "guideline_filtered": reverse("guidelines:dashboard_guideline", args=["social-media"])
        + "?status=pending&search=grow&sort=due_date&page=2",
        "export": reverse("guidelines:dashboard_export", args=["social-media"]),
        "team": reverse("guidelines:team") + "?guideline=social-media",
    }
    client = client_as(bob if page == "team" else hilde)
    _grow(employees=9, versions=1, guideline=guideline, hilde=hilde, bob=bob, web_meta=web_meta, start=0)
    _queries(client, urls[page])  # once first: per-process caches (permission names, texts) fill here
    small = _queries(client, urls[page])

    version = _grow(employees=50, versions=4, guideline=guideline, hilde=hilde, bob=bob, web_meta=web_meta, start=9)
    services.extend_due_date(employee=bob.direct_reports.first(), version=version, by=hilde,
                             due_date=timezone.localdate() + timedelta(days=90), reason="Leave")
    second = make_guideline(hilde, slug="second")
    publish(second, author=hilde, approver=bob.user)
    with django_assert_max_num_queries(small):
        large = _queries(client, urls[page])
    assert large == small
    assert small <= 15


def test_export_defuses_spreadsheet_formulas_in_hr_data(client_as, hilde, guideline, version_1, db):
    from .factories import make_employee

    make_employee("mallory@example.com", "=HYPERLINK(1)", department="@Sales")
    body = b"".join(client_as(hilde).get("/dashboards/social-media/export.csv").streaming_content).decode()
    assert "'=HYPERLINK(1)" in body and "'@Sales" in body
    assert ",=HYPERLINK" not in body
