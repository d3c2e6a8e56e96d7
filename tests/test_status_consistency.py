"""One rule, every consumer: the same employees through the status module (per employee and in
SQL), the dashboards, the CSV export, the team page, the home page, the guideline page, the
acknowledge check, the reminder planner and the auditor pack's rows, for every status and edge.

The scene, on the social media guideline (due period 30 days): version 1.0 published on
4 January 2027, editorial 1.1 on 15 January (acknowledgements of 1.0 carry over), looked at on
10 February (after the due date of 3 February: the editorial 1.1 does not move it to 14 February):

- acknowledged: acknowledged 1.0 on 10 January;
- exempt_and_acknowledged: acknowledged, then exempted: acknowledged (evidence on record wins);
- exempt: exempted, not acknowledged;
- overdue: nothing;
- extended: an extension to 20 February granted on 5 February, after the due date: pending;
- joiner: started 20 January: due 19 February, pending;
- leaver: leaves on 10 February (the end date is the first day without employment): out of scope.

And on a second guideline with a re-acknowledgement interval of 20 days (same dates):
- renewed: acknowledged on 1 February: acknowledged;
- lapsed: acknowledged on 5 January, more than 20 days ago: overdue again.
"""

import csv
import io
from datetime import date, datetime, time

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from guidelines import dashboards, notifications, services, status
from guidelines.models import Employee
from guidelines.reports import contents
from guidelines.status import Status

from .factories import make_employee, make_guideline, publish

DAY = date(2027, 2, 10)
DUE = date(2027, 2, 3)
# {employee: (status on the social media guideline, on the code of conduct)}, each (status, due date);
# None: out of scope.
EXPECTED = {
    "acknowledged": ((Status.ACKNOWLEDGED, DUE), (Status.OVERDUE, DUE)),
    "exempt_and_acknowledged": ((Status.ACKNOWLEDGED, DUE), (Status.OVERDUE, DUE)),
    "exempt": ((Status.EXEMPT, DUE), (Status.OVERDUE, DUE)),
    "overdue": ((Status.OVERDUE, DUE), (Status.OVERDUE, DUE)),
    "extended": ((Status.PENDING, date(2027, 2, 20)), (Status.OVERDUE, DUE)),
    "joiner": ((Status.PENDING, date(2027, 2, 19)), (Status.PENDING, date(2027, 2, 19))),
    "leaver": (None, None),
    "renewed": ((Status.OVERDUE, DUE), (Status.ACKNOWLEDGED, DUE)),
    "lapsed": ((Status.OVERDUE, DUE), (Status.OVERDUE, DUE)),
}


def at(day, hour=12):
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def scene(hilde, bob, web_meta):
    with time_machine.travel(at(date(2027, 1, 4), 9), tick=False):
        social = make_guideline(hilde, due_days=30)
        renewal = make_guideline(hilde, slug="code-of-conduct", due_days=30, reacknowledge_days=20)
        people = {name: make_employee(f"{name.replace('_', '.')}@example.com", f"E{index:04d}", manager=bob)
                  for index, name in enumerate(EXPECTED, start=100)}
        Employee.objects.filter(pk=people["joiner"].pk).update(start_date=date(2027, 1, 20))
        Employee.objects.filter(pk=people["leaver"].pk).update(end_date=DAY)
        first = publish(social, author=hilde, approver=bob.user)
        renewal_version = publish(renewal, author=hilde, approver=bob.user)
    people = {name: Employee.objects.select_related("user").get(pk=person.pk) for name, person in people.items()}

    def acknowledge(name, version, day):
        with time_machine.travel(at(day), tick=False):
            services.acknowledge(employee=people[name], version=version, language="en", meta=web_meta)

    acknowledge("acknowledged", first, date(2027, 1, 10))
    acknowledge("exempt_and_acknowledged", first, date(2027, 1, 11))
    acknowledge("lapsed", renewal_version, date(2027, 1, 5))
    with time_machine.travel(at(date(2027, 1, 15)), tick=False):
        current = publish(social, author=hilde, approver=bob.user, material=False)
    assert (current.major, current.minor) == (1, 1)
    acknowledge("renewed", renewal_version, date(2027, 2, 1))
    with time_machine.travel(at(date(2027, 2, 5)), tick=False):
        for name in ("exempt", "exempt_and_acknowledged"):
            services.grant_exemption(employee=people[name], guideline=social, by=hilde, reason="long-term leave")
        services.extend_due_date(employee=people["extended"], version=current, by=hilde, due_date=date(2027, 2, 20),
                                 reason="parental leave")
    return {"people": people, "current": current, "renewal": renewal_version}


def expected(scene):
    """{(employee name, version pk): (status, due date)} for everyone in scope."""
    return {(name, version.pk): answer for name, answers in EXPECTED.items()
            for version, answer in zip(versions(scene), answers, strict=True) if answer is not None}


def names(scene):
    return {person.pk: name for name, person in scene["people"].items()}


def versions(scene):
    return [scene["current"], scene["renewal"]]


@pytest.fixture
def on_the_day():
    with time_machine.travel(at(DAY), tick=False):
        yield


def test_the_status_module_answers_alike_per_employee_and_in_sql(scene, on_the_day):
    per_employee = {}
    for name, person in scene["people"].items():
        for version_pk, standing in status.standings(person, versions(scene)).items():
            if standing.in_scope:
                per_employee[name, version_pk] = (standing.status, standing.due_date)
    in_sql = {}
    for version in versions(scene):
        for row in status.with_status(status.in_scope(version, DAY), version, DAY).values("pk", "status", "due_date"):
            if row["pk"] in names(scene):
                in_sql[names(scene)[row["pk"]], version.pk] = (row["status"], row["due_date"])
    assert per_employee == expected(scene)
    assert in_sql == expected(scene)


def test_dashboards_counts_list_and_each_status_filter_agree(scene, on_the_day):
    for version in versions(scene):
        wanted = {name: answer for (name, pk), answer in expected(scene).items() if pk == version.pk}
        listed = {names(scene)[row.pk]: (row.status, row.due_date)
                  for row in dashboards.employee_list(version, DAY) if row.pk in names(scene)}
        assert listed == wanted
        for each in Status:
            filtered = {names(scene)[row.pk] for row in dashboards.employee_list(version, DAY, status=each)
                        if row.pk in names(scene)}
            assert filtered == {name for name, (state, _) in wanted.items() if state == each}
        counts = dashboards.summary(version, DAY, Employee.objects.filter(pk__in=names(scene))).counts
        assert {each: getattr(counts, each) for each in Status} == {
            each: sum(state == each for state, _ in wanted.values()) for each in Status}
        assert dashboards.version_counts([version], DAY, Employee.objects.filter(pk__in=names(scene)))[
            version.pk] == counts


def test_the_csv_export_and_the_team_page_agree(scene, on_the_day, client_as, hilde, bob):
    version = scene["current"]
    wanted = {name: answer for (name, pk), answer in expected(scene).items() if pk == version.pk}
    response = client_as(hilde).get(reverse("guidelines:dashboard_export", args=[version.guideline.slug]))
    rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    by_number = {person.employee_number: name for name, person in scene["people"].items()}
    exported = {by_number[row["employee_number"]]: (row["status"], date.fromisoformat(row["due_date"]))
                for row in rows if row["employee_number"] in by_number}
    assert exported == wanted

    team = client_as(bob).get(reverse("guidelines:team"), {"guideline": version.guideline.slug})
    shown = {names(scene)[row.pk]: (row.status, row.due_date) for row in team.context["page"]
             if row.pk in names(scene)}
    assert shown == wanted


def test_the_home_page_and_the_guideline_page_agree(scene, on_the_day, client_as):
    for name, person in scene["people"].items():
        home = client_as(person).get(reverse("guidelines:home"))
        for version in versions(scene):
            answer = expected(scene).get((name, version.pk))
            on_home = {
                "done": Status.ACKNOWLEDGED, "exempt": Status.EXEMPT,
            }
            found = [(on_home.get(group) or (Status.OVERDUE if item.get("overdue") else Status.PENDING),
                      item["due_date"]) for group in ("pending", "done", "exempt") for item in home.context[group]
                     if item["version"].pk == version.pk]
            assert found == ([answer] if answer else []), (name, version)

            page = client_as(person).get(reverse("guidelines:detail", args=[version.guideline.slug]))
            if answer is None:
                assert page.status_code == 200 and page.context["form"] is None, name
                continue
            assert page.context["due_date"] == answer[1], name
            assert (page.context["form"] is not None) == (answer[0] != Status.ACKNOWLEDGED), name
            assert (page.context["ack"] is not None) == (answer[0] == Status.ACKNOWLEDGED), name


def test_the_acknowledge_check_refuses_exactly_those_out_of_scope(scene, on_the_day, web_meta):
    for name, person in scene["people"].items():
        for version, answer in zip(versions(scene), EXPECTED[name], strict=True):
            if answer is None:
                with pytest.raises(PermissionDenied):
                    services.acknowledge(employee=person, version=version, language="en", meta=web_meta)
            else:
                _, created = services.acknowledge(employee=person, version=version, language="en", meta=web_meta)
                assert created == (answer[0] != Status.ACKNOWLEDGED), (name, version)


def test_the_reminder_planner_and_the_auditor_pack_agree(scene, on_the_day):
    outstanding = notifications.outstanding_rows(versions(scene), DAY, Employee.objects.filter(pk__in=names(scene)))
    planned = {(names(scene)[pk], version_pk): (state, due) for pk, items in outstanding.items()
               for version_pk, state, due in items}
    assert planned == {key: answer for key, answer in expected(scene).items()
                       if answer[0] in (Status.PENDING, Status.OVERDUE)}

    by_number = {person.employee_number: name for name, person in scene["people"].items()}
    for version in versions(scene):
        pack = contents.parse_pack(guideline_slug=version.guideline.slug, as_of=DAY.isoformat())
        in_pack = {by_number[row["employee_number"]]: (row["status"], row["due_date"])
                   for row in contents.employee_rows(pack, version) if row["employee_number"] in by_number}
        assert in_pack == {name: answer for (name, pk), answer in expected(scene).items() if pk == version.pk}
