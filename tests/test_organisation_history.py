"""The organisation as it was: history recorded by PostgreSQL triggers, with who and which import run,
and "as of" reports that read the population, departments and managers of the day from it."""

import csv
import io
from datetime import date, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from guidelines import dashboards, imports
from guidelines.models import AccountHistory, Department, Employee, EmployeeHistory, ImportRun, RoleGroupHistory
from guidelines.organisation import organisation_on
from guidelines.reports import contents
from guidelines.status import in_scope

from .factories import make_employee, publish, sign_in, tamper
from .test_imports import csv_file, person
from .test_reports import generate, pdf_path

PAST = date(2026, 7, 1)  # an "as of" day; the records below are made relative to it
BEFORE = timezone.make_aware(datetime(2026, 6, 15, 12))


def back_record(model, **fields):
    """A record made on 15 June: as if the organisation had been like this then. (Appending is what the
    triggers do; the application role may append too, never change or delete.)"""
    with time_machine.travel(BEFORE, tick=False):  # the field's auto_now_add
        return model.objects.create(**{"pgh_label": "changed", **fields})


def names(queryset):
    return sorted(queryset.values_list("employee_number", flat=True))


@pytest.fixture
def moved(db, guideline, hilde, bob):
    """Sales is the audience. Today: Xavier in Sales, Yara in Operations, Zoë in Sales with her account
    switched off, Wim in the Traders group. On 1 July: Xavier in Operations under Yara, Yara in Sales,
    Zoë active, Wim not yet a trader."""
    sales, operations = (Department.objects.get_or_create(name=name)[0] for name in ("Sales", "Operations"))
    traders = Group.objects.create(name="Traders")
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.set([sales])
    guideline.audience_groups.set([traders])
    with time_machine.travel(timezone.make_aware(datetime(2026, 6, 1, 9)), tick=False):
        version = publish(guideline, author=hilde, approver=bob.user)
    yara = make_employee("yara@example.com", "E0200", department="Operations")
    xavier = make_employee("xavier@example.com", "E0100", department="Sales", manager=yara)
    zoe = make_employee("zoe@example.com", "E0300", department="Sales", is_active=False)
    wim = make_employee("wim@example.com", "E0400", department="Finance")
    wim.user.groups.add(traders)
    back_record(EmployeeHistory, pgh_obj=xavier, department=operations, manager=yara)
    back_record(EmployeeHistory, pgh_obj=yara, department=sales)
    back_record(AccountHistory, pgh_obj_id=zoe.user_id, is_active=True)
    back_record(RoleGroupHistory, user=wim.user, group=traders, pgh_label="removed")
    return {"xavier": xavier, "yara": yara, "zoe": zoe, "wim": wim, "version": version, "sales": sales,
            "operations": operations}


def test_every_change_is_recorded_by_the_database_with_its_import_run_and_who(db, hilde):
    first = imports.run_import(csv_file([person("E0500", department="Sales"), person("E0501")]),
                               source="people.csv", by=hilde)
    second = imports.run_import(csv_file([person("E0500", department="Operations", end_date="2027-01-31"),
                                          person("E0501")]), source="people-2.csv", by=hilde)
    assert first.run.outcome == second.run.outcome == ImportRun.Outcome.APPLIED
    records = list(EmployeeHistory.objects.filter(pgh_obj__employee_number="E0500").order_by("pgh_id"))
    assert [(r.pgh_label, r.department.name, r.end_date) for r in records] == [
        ("created", "Sales", None), ("changed", "Operations", date(2027, 1, 31))]
    assert [r.pgh_context for r in records] == [
        {"source": "import", "by": hilde.pk, "import_run": first.run.pk},
        {"source": "import", "by": hilde.pk, "import_run": second.run.pk}]
    # E0501 did not change in the second run: no record of it.
    assert EmployeeHistory.objects.filter(pgh_obj__employee_number="E0501").count() == 1
    # Outside recorded() a change is still recorded, with no context (say, a script or SQL).
    Employee.objects.filter(employee_number="E0501").update(start_date=date(2020, 1, 1))
    latest = EmployeeHistory.objects.filter(pgh_obj__employee_number="E0501").latest("pgh_id")
    assert (latest.start_date, latest.pgh_context) == (date(2020, 1, 1), None)


def test_an_import_that_fails_in_the_database_leaves_no_context_behind(db, hilde, alice, monkeypatch):
    def refused(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")  # the database refuses halfway through the apply

    monkeypatch.setattr(imports, "_upsert", refused)
    result = imports.run_import(csv_file([person("E0900")]), source="people.csv", by=hilde)
    assert result.run.outcome == ImportRun.Outcome.REJECTED
    assert not Employee.objects.filter(employee_number="E0900").exists()
    Employee.objects.filter(pk=alice.pk).update(start_date=date(2021, 1, 1))
    assert EmployeeHistory.objects.filter(pgh_obj=alice).latest("pgh_id").pgh_context is None


def test_a_change_in_the_admin_names_who_made_it(client, hilde, alice):
    sales = Department.objects.create(name="Sales")
    sign_in(client, hilde)
    url = reverse("admin:guidelines_employee_change", args=[alice.pk])
    page = client.get(url)
    assert page.status_code == 200 and "Organisation history" in page.text
    response = client.post(url, {
        "department": sales.pk, "manager": alice.manager_id, "start_date": "", "end_date": "", "language": "en",
        "history-TOTAL_FORMS": "1", "history-INITIAL_FORMS": "1", "history-MIN_NUM_FORMS": "0",
        "history-MAX_NUM_FORMS": "1000",
        "history-0-pgh_id": EmployeeHistory.objects.get(pgh_obj=alice).pk, "history-0-pgh_obj": alice.pk,
    })
    assert response.status_code == 302, response.text[:2000]
    latest = EmployeeHistory.objects.filter(pgh_obj=alice).latest("pgh_id")
    assert latest.department == sales
    assert latest.pgh_context == {"source": "admin", "by": hilde.pk, "import_run": None}
    assert "admin, hilde@example.com" in client.get(url).text


def test_history_cannot_be_changed_deleted_or_switched_off(alice):
    record = EmployeeHistory.objects.get(pgh_obj=alice)
    for statement in ("UPDATE guidelines_employeehistory SET department_id = NULL WHERE pgh_id = %s",
                      "DELETE FROM guidelines_employeehistory WHERE pgh_id = %s"):
        with pytest.raises(IntegrityError, match="refused"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [record.pk])
    # pgtrigger lets a session skip named triggers; migration 0015 turned that off for everyone.
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'guidelines_employee'::regclass "
                       "AND tgname LIKE 'pgtrigger_%%'")
        triggers = [name for (name,) in cursor.fetchall()]
        assert len(triggers) == 2
        cursor.execute("SELECT set_config('pgtrigger.ignore', %s, false)", ["{" + ",".join(triggers) + "}"])
        try:
            Employee.objects.filter(pk=alice.pk).update(end_date=date(2027, 5, 1))
        finally:
            cursor.execute("RESET pgtrigger.ignore")
    assert EmployeeHistory.objects.filter(pgh_obj=alice).latest("pgh_id").end_date == date(2027, 5, 1)


def test_the_scope_of_a_past_day_is_the_organisation_recorded_then(moved):
    version = moved["version"]
    # Today: Xavier (Sales) and Wim (Traders); Zoë's account is off, Yara is in Operations.
    assert names(in_scope(version, timezone.localdate())) == ["E0100", "E0400"]
    # 1 July: Yara (Sales then) and Zoë (active then); Xavier was in Operations, Wim not yet a trader.
    assert names(in_scope(version, PAST)) == ["E0200", "E0300"]
    summary = dashboards.summary(version, PAST)
    assert [(d.name, d.counts.in_scope) for d in summary.departments] == [("Sales", 2)]
    rows = dashboards.employee_list(version, PAST, department=str(moved["sales"].pk))
    assert [(r.employee_number, r.department_name) for r in rows] == [("E0200", "Sales"), ("E0300", "Sales")]


def test_before_the_first_record_the_first_record_stands(moved):
    """History began with the first record of each employee: earlier days read it (their employment
    dates still decide whether they were employed)."""
    make_employee("nora@example.com", "E0600", department="Sales")
    joiner = make_employee("jan@example.com", "E0700", department=None)
    Employee.objects.filter(pk=joiner.pk).update(department=moved["sales"], start_date=date(2026, 9, 1))
    joiner_record = EmployeeHistory.objects.filter(pgh_obj=joiner).earliest("pgh_id")
    assert joiner_record.department is None
    # Nora's first record stands for 1 July; Jan's too: no department then, so not in the audience.
    assert names(in_scope(moved["version"], PAST)) == ["E0200", "E0300", "E0600"]


def test_an_employee_the_history_never_recorded_was_not_in_scope_on_a_past_day(moved):
    """Only with the triggers switched off (as the tables' owner) can an employee have no record."""
    ghost = make_employee("gert@example.com", "E0800", department="Sales")
    tamper("DELETE FROM guidelines_employeehistory WHERE pgh_obj_id = %s", [ghost.pk])
    assert "E0800" not in names(in_scope(moved["version"], PAST))
    assert "E0800" in names(in_scope(moved["version"], timezone.localdate()))


def test_the_auditor_pack_as_of_a_past_day_shows_the_departments_and_managers_of_that_day(moved, arjen):
    # Xavier is in the audience only when Operations is too; then he reports to Yara on that day.
    moved["version"].guideline.audience_departments.add(moved["operations"])
    report = generate(arjen, as_of=PAST.isoformat())
    reader = PdfReader(pdf_path(report))
    rows = {row["employee_number"]: row for row in csv.DictReader(
        io.StringIO(reader.attachments["acknowledgements.csv"][0].decode()))}
    assert sorted(rows) == ["E0002", "E0100", "E0200", "E0300"]  # Bob: in Operations all along
    assert (rows["E0100"]["department"], rows["E0100"]["manager_employee_number"]) == ("Operations", "E0200")
    assert rows["E0200"]["department"] == "Sales"
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Operations" in text and "Sales" in text


def test_a_department_pack_of_a_past_day_takes_its_members_of_that_day(moved, arjen):
    pack = contents.parse_pack(guideline_slug="social-media", department="Sales", as_of=PAST.isoformat())
    assert sorted(row["employee_number"] for row in contents.employee_rows(pack, pack.versions[-1])) == [
        "E0200", "E0300"]
    today = contents.parse_pack(guideline_slug="social-media", department="Sales")
    assert sorted(row["employee_number"] for row in contents.employee_rows(today, today.versions[-1])) == ["E0100"]


def test_today_reads_the_tables_and_agrees_with_the_latest_records(moved):
    """Today's organisation is the tables; the latest record of everyone says the same."""
    assert not organisation_on(timezone.localdate()).historical
    for employee in Employee.objects.all():
        latest = EmployeeHistory.objects.filter(pgh_obj=employee).latest("pgh_created_at", "pgh_id")
        assert (latest.department_id, latest.manager_id) == (employee.department_id, employee.manager_id)
