"""guidelines/prepared.py: a query compiled once answers exactly as the ORM would, for every value."""

import threading
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.db.models import Count, Exists, OuterRef
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from guidelines import services
from guidelines.models import Acknowledgement, Employee, Exemption, Guideline, Reading, Version
from guidelines.prepared import PreparedQueries, PreparedQuery

from .factories import make_employee, make_guideline, publish

pytestmark = pytest.mark.django_db


def _employees(department_id, since):
    return (Employee.objects.filter(department=department_id, start_date__gte=since)
            .select_related("user", "department").order_by("employee_number"))


EMPLOYEES = PreparedQuery(Employee, _employees, int, date)


@pytest.fixture
def staff(alice, bob, otto):
    alice.start_date, bob.start_date, otto.start_date = date(2024, 1, 1), date(2025, 6, 1), date(2025, 1, 1)
    for employee in (alice, bob, otto):
        employee.save()
    return alice, bob, otto


def test_rows_equal_the_orm_for_every_value_with_related_objects(staff):
    alice, bob, otto = staff
    for department in (alice.department, otto.department):
        for since in (date(2023, 1, 1), date(2024, 12, 31), date(2025, 6, 1), date(2026, 1, 1)):
            prepared = EMPLOYEES(department.pk, since)
            orm = list(_employees(department.pk, since))
            assert [e.pk for e in prepared] == [e.pk for e in orm], (department, since)
            # select_related objects come along, with no query more.
            with CaptureQueriesContext(connection) as queries:
                assert [(e.user.email, e.department.name) for e in prepared] == [
                    (e.user.email, e.department.name) for e in orm]
            assert len(queries) == 0
    assert [e.pk for e in EMPLOYEES(alice.department_id, date(2025, 1, 1))] == [bob.pk]


def test_one_query_per_call_and_annotations_come_along(version_1, alice, bob):
    services.record_reading(employee=alice, version=version_1)
    opened = PreparedQuery(
        Version,
        lambda employee_id: Version.objects.filter(pk=version_1.pk).annotate(
            opened=Exists(Reading.objects.filter(employee=employee_id, version=OuterRef("pk"))),
            readers=Count("readings")),
        int)
    with CaptureQueriesContext(connection) as queries:
        [for_alice] = opened(alice.pk)
        [for_bob] = opened(bob.pk)
    assert len(queries) == 2
    assert (for_alice.opened, for_bob.opened) == (True, False)
    assert for_alice.readers == for_bob.readers == 1


def test_values_lists_and_none_matches_nothing(version_1, alice, hilde):
    today = timezone.localdate()
    Exemption.objects.create(employee=alice, guideline=version_1.guideline, reason="On leave",
                             starts_on=today - timedelta(days=3), ends_on=today, granted_by=hilde)
    exempt = PreparedQuery(
        Exemption,
        lambda employee_id, day: Exemption.objects.active_on(day).filter(employee=employee_id)
        .values_list("guideline_id", flat=True),
        int, date)
    assert exempt(alice.pk, today) == [version_1.guideline_id]
    assert exempt(alice.pk, today + timedelta(days=1)) == []  # ended
    assert exempt(alice.pk, today - timedelta(days=4)) == []  # not started
    # The ORM would write IS NULL for None; here NULL compares to nothing.
    assert exempt(None, today) == []


def test_a_value_that_does_not_reach_the_sql_is_refused(alice):
    ignoring = PreparedQuery(Employee, lambda employee_id, number: Employee.objects.filter(pk=employee_id), int, str)
    with pytest.raises(ValueError, match=r"value\(s\) \[1\]"):
        ignoring(alice.pk, "E0001")
    with pytest.raises(TypeError, match="takes 2 values"):
        ignoring(alice.pk)
    with pytest.raises(TypeError, match="int, str or date"):
        PreparedQuery(Employee, lambda when: Employee.objects.filter(user__last_login__lt=when), float)(1.0)


def test_strings_are_parameters_not_sql(version_1):
    by_slug = PreparedQuery(Guideline, lambda slug: Guideline.objects.filter(slug=slug), str)
    assert [g.pk for g in by_slug(version_1.guideline.slug)] == [version_1.guideline_id]
    assert by_slug("x' OR '1'='1") == []
    assert Guideline.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_another_thread_runs_it_on_its_own_connection(alice):
    by_number = PreparedQuery(Employee, lambda number: Employee.objects.filter(employee_number=number), str)
    assert [e.pk for e in by_number("E0001")] == [alice.pk]  # compiled on this thread's connection
    seen = {}

    def other_thread():
        try:
            seen["rows"] = [e.pk for e in by_number("E0001")]
            seen["connection"] = connections["default"]
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen["rows"] == [alice.pk]
    assert seen["connection"] is not connections["default"]


def test_an_employee_without_department_does_not_see_guidelines_for_departments_or_groups(hilde, bob):
    """The home page's prepared query and the ORM's Guideline.objects.for_employee agree, also for an
    employee with no department (the ORM would turn `department = None` into IS NULL)."""
    loner = make_employee("loner@example.com", "E0500", department=None)
    for_everyone = make_guideline(hilde, slug="everyone")
    for_finance = make_guideline(hilde, slug="finance", audience_everyone=False)
    for_finance.audience_departments.add(make_employee("f@example.com", "E0501", department="Finance").department)
    for_approvers = make_guideline(hilde, slug="approvers", audience_everyone=False)
    for_approvers.audience_groups.add(Group.objects.get(name="Approvers"))
    for guideline in (for_everyone, for_finance, for_approvers):
        publish(guideline, author=hilde, approver=bob.user)

    assert set(Guideline.objects.for_employee(loner).values_list("slug", flat=True)) == {"everyone"}
    assert [g.slug for g in (for_everyone, for_finance, for_approvers) if g.includes(loner)] == ["everyone"]
    assert set(Guideline.objects.for_employee(bob).values_list("slug", flat=True)) == {"everyone", "approvers"}

    from django.test import Client

    client = Client(headers={"accept-language": "en"})
    client.force_login(loner.user)
    page = client.get("/").content.decode()
    assert page.count('href="/guidelines/everyone/"') == 2
    assert "/guidelines/finance/" not in page and "/guidelines/approvers/" not in page
    assert Acknowledgement.objects.count() == 0


def test_only_prepared_queries_are_prepared_on_the_server(alice):
    by_number = PreparedQuery(Employee, lambda number: Employee.objects.filter(employee_number=number), str)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    threshold = connection.connection.prepare_threshold
    for _ in range(6):  # more runs than psycopg's usual threshold (5) for preparing a statement
        assert [e.pk for e in by_number("E0001")] == [alice.pk]
        assert list(Employee.objects.filter(user__email="alice@example.com").values_list("pk", flat=True)) == [alice.pk]
    assert connection.connection.prepare_threshold == threshold
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert len(prepared) == 1
    assert '"employee_number" = $1' in prepared[0] and "auth_user" not in prepared[0]


def test_prepared_queries_reuse_one_per_key_and_forget_the_least_recently_used(staff):
    alice, bob, otto = staff
    built = []

    def build_for(department_id):
        def build(since):
            built.append(department_id)
            return _employees(department_id, since)

        return build

    queries = PreparedQueries(Employee, date, size=2)
    for department in (alice.department_id, otto.department_id, alice.department_id):
        rows = queries.get(department, build_for(department))(date(2024, 6, 1))
        assert rows == list(_employees(department, date(2024, 6, 1)))
    assert built == [alice.department_id, otto.department_id]  # the third call reused the first key's
    queries.get("third", build_for(alice.department_id))(date(2024, 6, 1))  # evicts otto's, the least recent
    queries.get(otto.department_id, build_for(otto.department_id))(date(2024, 6, 1))
    assert built == [alice.department_id, otto.department_id, alice.department_id, otto.department_id]
