import codecs
import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command, execute_from_command_line
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from guidelines import imports
from guidelines.models import AuditEvent, Department, Employee, ImportChange, ImportRun
from guidelines.views import hr_import

User = get_user_model()
URL = reverse("guidelines:hr_import")


def person(number, **fields):
    return {
        "employee_number": number,
        "email": f"{number.lower()}@example.com",
        "first_name": "Fien",
        "last_name": number,
        "department": "Operations",
        "manager_employee_number": "",
        "start_date": "2024-01-15",
        "end_date": "",
        "language": "nl",
        **fields,
    }


def csv_file(rows, *, delimiter=",", bom=False, header=imports.COLUMNS):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    content = out.getvalue().encode()
    return codecs.BOM_UTF8 + content if bom else content


def run(content, **kwargs):
    return imports.run_import(content, source="people.csv", **kwargs)


def team(size, *, prefix="T", department="Team"):
    """A head and `size - 1` reports, the head listed last so managers must be resolved in two passes."""
    head = f"{prefix}0000"
    rows = [person(f"{prefix}{n:04d}", department=f"{department} {n % 5}", manager_employee_number=head)
            for n in range(1, size)]
    return [*rows, person(head, department=f"{department} 0")]


def snapshot():
    return Employee.objects.count(), User.objects.count(), Department.objects.count()


# Reading files ------------------------------------------------------------------------------


def test_comma_separated_file_creates_employees_users_and_departments(db):
    content = csv_file([person("E1", department="Legal", language="en"), person("E2", email="Jan.Smit@Example.COM")])

    result = run(content)

    assert result.errors == []
    assert result.counts == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0, "leavers": 0, "not_in_file": 0}
    first = Employee.objects.select_related("user", "department").get(employee_number="E1")
    assert (first.department.name, first.language, first.user.first_name) == ("Legal", "en", "Fien")
    jan = User.objects.get(employee__employee_number="E2")
    assert jan.username == jan.email == "jan.smit@example.com"
    assert not jan.has_usable_password()
    assert jan.is_active
    assert set(Department.objects.values_list("name", flat=True)) == {"Legal", "Operations"}


def test_semicolon_separated_file_with_bom_reads_the_same(db):
    content = csv_file([person("E1", last_name="de Vries, jr."), person("E2")], delimiter=";", bom=True)

    result = run(content)

    assert result.errors == []
    assert Employee.objects.get(employee_number="E1").user.last_name == "de Vries, jr."
    assert Employee.objects.count() == 2


def test_columns_may_come_in_any_order_and_blank_lines_are_ignored(db):
    header = list(reversed(imports.COLUMNS))
    content = csv_file([person("E1")], header=header) + b"\r\n,,,\r\n , ,,,,,,,\r\n"

    assert run(content).errors == []
    assert Employee.objects.get().employee_number == "E1"


def test_header_names_are_matched_without_case_or_surrounding_spaces(db):
    content = csv_file([person("E1")]).replace(b"employee_number,email", b" Employee_Number , EMAIL", 1)

    assert run(content).errors == []


# Upserting ----------------------------------------------------------------------------------


def test_second_import_updates_names_department_and_manager_and_counts_unchanged_rows(db):
    run(csv_file([person("M1"), person("M2"), person("E1", manager_employee_number="M1"), person("E2")]))

    result = run(csv_file([
        person("M1"),
        person("M2"),
        person("E1", first_name="Anna", department="Finance", manager_employee_number="M2"),
        person("E2", email="e2.new@example.com"),
    ]))

    assert result.counts == {"rows": 4, "created": 0, "updated": 2, "unchanged": 2, "leavers": 0, "not_in_file": 0}
    e1 = Employee.objects.select_related("user", "department", "manager").get(employee_number="E1")
    assert (e1.user.first_name, e1.department.name, e1.manager.employee_number) == ("Anna", "Finance", "M2")
    e2 = Employee.objects.select_related("user").get(employee_number="E2")
    assert e2.user.username == e2.user.email == "e2.new@example.com"
    assert Employee.objects.count() == 4 and User.objects.count() == 4


def test_importing_the_same_file_twice_changes_nothing_the_second_time(db):
    content = csv_file(team(12))
    run(content)
    before = list(Employee.objects.values_list("pk", "user_id", "manager_id", "department_id").order_by("pk"))

    result = run(content)

    assert result.counts["unchanged"] == 12 and result.counts["created"] == result.counts["updated"] == 0
    assert list(Employee.objects.values_list("pk", "user_id", "manager_id", "department_id").order_by("pk")) == before


def test_managers_are_resolved_within_the_file_whatever_the_order(db):
    run(csv_file([person("E1", manager_employee_number="M1"), person("M1", manager_employee_number="B1"),
                  person("B1")]))

    managers = dict(Employee.objects.values_list("employee_number", "manager__employee_number"))
    assert managers == {"E1": "M1", "M1": "B1", "B1": None}


def test_a_chain_of_managers_deeper_than_the_level_limit_is_resolved(db):
    depth = imports.MAX_LEVELS + 5
    chain = [person(f"C{n:02d}", manager_employee_number=f"C{n - 1:02d}" if n else "") for n in range(depth)]

    assert run(csv_file(chain[::-1])).errors == []

    managers = dict(Employee.objects.values_list("employee_number", "manager__employee_number"))
    assert managers == {f"C{n:02d}": f"C{n - 1:02d}" if n else None for n in range(depth)}


def test_an_existing_employee_may_report_to_a_new_manager_from_the_same_file(alice):
    run(csv_file([person("E0001", email="alice@example.com", first_name="Alice", last_name="Example",
                         language="en", start_date="", manager_employee_number="M1"),
                  person("M1")]))

    alice.refresh_from_db()
    assert alice.manager.employee_number == "M1"


def test_managers_are_resolved_from_the_database(bob):
    run(csv_file([person("E1", manager_employee_number="E0002")]))

    assert Employee.objects.get(employee_number="E1").manager == bob


def test_clearing_the_manager_and_department_in_the_file_clears_them(alice):
    run(csv_file([person("E0001", email="alice@example.com", first_name="Alice", last_name="Example",
                         department="", language="en", start_date="")]))

    alice.refresh_from_db()
    assert alice.manager is None and alice.department is None


def test_joiner_start_dates_are_stored(db):
    run(csv_file([person("E1", start_date="2026-03-01"), person("E2", start_date="")]))

    dates = dict(Employee.objects.values_list("employee_number", "start_date"))
    assert str(dates["E1"]) == "2026-03-01" and dates["E2"] is None


def test_leavers_cannot_sign_in_once_their_end_date_has_passed(db):
    today = timezone.localdate()
    run(csv_file([person("E1"), person("E2"), person("E3")]))

    result = run(csv_file([
        person("E1", end_date=str(today - timedelta(days=1))),
        person("E2", end_date=str(today)),
        person("E3", end_date=str(today + timedelta(days=30))),
    ]))

    assert result.counts["leavers"] == 3
    active = dict(User.objects.values_list("employee__employee_number", "is_active"))
    assert active == {"E1": False, "E2": False, "E3": True}
    assert str(Employee.objects.get(employee_number="E3").end_date) == str(today + timedelta(days=30))


def test_a_new_employee_who_already_left_gets_an_inactive_account(db):
    result = run(csv_file([person("E1", start_date="2020-01-01", end_date="2021-06-30")]))

    assert result.counts["leavers"] == 1
    assert not User.objects.get(employee__employee_number="E1").is_active


def test_a_leaver_is_deactivated_by_the_first_import_on_or_after_the_end_date(db, monkeypatch):
    last_day = timezone.localdate() + timedelta(days=10)
    content = csv_file([person("E1", end_date=str(last_day))])
    run(content)
    assert User.objects.get(username="e1@example.com").is_active

    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: last_day)
    result = run(content)

    assert (result.counts["updated"], result.counts["leavers"]) == (1, 1)
    assert not User.objects.get(username="e1@example.com").is_active
    assert run(content).counts == {"rows": 1, "created": 0, "updated": 0, "unchanged": 1, "leavers": 0,
                                   "not_in_file": 0}


def test_clearing_the_end_date_keeps_the_account_inactive(db):
    run(csv_file([person("E1", start_date="2020-01-01", end_date="2021-06-30")]))

    run(csv_file([person("E1", start_date="2020-01-01")]))

    employee = Employee.objects.select_related("user").get(employee_number="E1")
    assert employee.end_date is None and not employee.user.is_active


def test_active_flag_is_left_alone_for_employees_without_an_end_date(db):
    run(csv_file([person("E1")]))
    User.objects.filter(username="e1@example.com").update(is_active=False)  # e.g. blocked by an administrator

    assert run(csv_file([person("E1")])).counts["unchanged"] == 1
    assert not User.objects.get(username="e1@example.com").is_active


def test_employees_missing_from_the_file_are_left_unchanged_and_counted(alice, otto):
    result = run(csv_file([person("E1")]))

    assert result.counts["not_in_file"] == 3  # alice, her manager bob, otto
    assert Employee.objects.filter(pk__in=[alice.pk, otto.pk], user__is_active=True).count() == 2


def test_an_account_without_employee_record_is_linked_to_the_new_employee(nina):
    result = run(csv_file([person("E7", email="NINA@example.com", first_name="Nina", last_name="Jansen")]))

    assert result.counts["created"] == 1
    employee = Employee.objects.select_related("user").get(employee_number="E7")
    assert employee.user == nina
    assert employee.user.last_name == "Jansen"
    assert employee.user.has_usable_password()  # her existing password keeps working
    assert User.objects.filter(email__iexact="nina@example.com").count() == 1


# Dry runs and records -----------------------------------------------------------------------


def test_dry_run_changes_nothing_but_reports_what_would_change(alice):
    before = snapshot()

    result = run(csv_file([person("E0001", email="alice@example.com", first_name="Alicia", last_name="Example",
                                  manager_employee_number="E0002", language="en", start_date="",
                                  department="Legal"),
                           person("N1"), person("N2", end_date="2020-01-01", start_date="2019-01-01")]),
                 dry_run=True)

    assert result.counts == {"rows": 3, "created": 2, "updated": 1, "unchanged": 0, "leavers": 1, "not_in_file": 1}
    assert snapshot() == before
    alice.user.refresh_from_db()
    assert alice.user.first_name == "Alice"
    assert ImportRun.objects.get().outcome == ImportRun.Outcome.DRY_RUN
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EMPLOYEES_IMPORTED).exists()


def test_an_applied_import_is_recorded_with_its_counts_and_an_audit_event(hilde):
    result = run(csv_file([person("E1"), person("E2")]), by=hilde)

    run_record = ImportRun.objects.get()
    assert result.run == run_record
    assert (run_record.outcome, run_record.by, run_record.source) == (ImportRun.Outcome.APPLIED, hilde, "people.csv")
    assert (run_record.rows, run_record.created, run_record.updated, run_record.errors) == (2, 2, 0, [])
    assert run_record.started_at <= run_record.finished_at
    event = AuditEvent.objects.get(action=AuditEvent.Action.EMPLOYEES_IMPORTED)
    assert event.actor == hilde
    assert event.details["import_run"] == run_record.pk and event.details["created"] == 2
    assert event.details["changed_fields"] == {} and event.details["linked_accounts"] == 0
    assert imports.last_applied_import() == run_record


@pytest.mark.parametrize("copy", [True, False], ids=["COPY", "bulk_create"])
def test_every_changed_field_of_every_employee_is_kept_old_and_new_with_counts_per_field(db, monkeypatch, copy):
    yesterday = str(timezone.localdate() - timedelta(days=1))
    run(csv_file([person("M1"), person("E1", manager_employee_number="M1"), person("E2"), person("E3")]))
    if not copy:  # as on SQLite: INSERTs in batches
        monkeypatch.setattr(imports, "_can_copy", lambda: False)
        monkeypatch.setattr(imports, "BATCH_SIZE", 2)

    result = run(csv_file([
        person("M1"),
        person("E1", email="e1.new@example.com", last_name="Smit", manager_employee_number="", language="en"),
        person("E2", department="Finance", end_date=yesterday),
        person("E3", start_date=""),
        person("N1", department="", start_date=""),
    ]))

    changes = {change.employee_number: (change.action, change.fields)
               for change in ImportChange.objects.filter(run=result.run)}
    assert changes == {
        "E1": ("updated", {"email": ["e1@example.com", "e1.new@example.com"], "last_name": ["E1", "Smit"],
                           "manager_employee_number": ["M1", None], "language": ["nl", "en"]}),
        "E2": ("updated", {"is_active": [True, False], "department": ["Operations", "Finance"],
                           "end_date": [None, yesterday]}),
        "E3": ("updated", {"start_date": ["2024-01-15", None]}),
        "N1": ("created", {"email": [None, "n1@example.com"], "first_name": [None, "Fien"], "last_name": [None, "N1"],
                           "is_active": [None, True], "language": [None, "nl"]}),
    }
    expected = {"email": 1, "last_name": 1, "is_active": 1, "department": 1, "manager_employee_number": 1,
                "start_date": 1, "end_date": 1, "language": 1}
    assert result.plan.changed_fields() == expected
    assert list(result.plan.changed_fields()) == ["email", "last_name", "is_active", "department",
                                                  "manager_employee_number", "start_date", "end_date", "language"]
    event = AuditEvent.objects.get(action=AuditEvent.Action.EMPLOYEES_IMPORTED, details__import_run=result.run.pk)
    assert event.details["changed_fields"] == expected


def test_a_notice_that_cannot_be_sent_keeps_neither_the_import_nor_the_other_notices_from_going_through(
        db, monkeypatch, caplog, django_capture_on_commit_callbacks):
    from django.core import mail

    run(csv_file([person("E1"), person("E2")]))
    build = imports.address_notice

    def refuse_the_first(change, recipient, **kwargs):
        if recipient == "e1@example.com":
            raise OSError("connection reset")
        return build(change, recipient, **kwargs)

    monkeypatch.setattr(imports, "address_notice", refuse_the_first)

    with django_capture_on_commit_callbacks(execute=True):
        result = run(csv_file([person("E1", email="e1.new@example.com"), person("E2", email="e2.new@example.com")]))

    assert result.errors == [] and result.counts["updated"] == 2
    assert sorted(message.to[0] for message in mail.outbox) == ["e1.new@example.com", "e2.new@example.com",
                                                               "e2@example.com"]
    assert "Address change notice for employee E1" in caplog.text


def test_dry_runs_and_rejected_files_keep_no_changes(alice):
    run(csv_file([person("E1")]), dry_run=True)
    run(csv_file([person("E1", language="fr")]))

    assert not ImportChange.objects.exists()


# Rejected files -----------------------------------------------------------------------------

H = ",".join(imports.COLUMNS)
GOOD = "E1,e1@example.com,Fien,Jansen,Sales,,2024-01-01,,nl"
TOO_LONG = "x" * 151


def lines(*rows):
    return ("\n".join(rows) + "\n").encode()


BAD_FILES = {
    "not utf-8": (lines(H, GOOD).replace(b"Jansen", "Jänsen".encode("latin-1")), 2, "", "not UTF-8"),
    "utf-16": (lines(H, GOOD).decode().encode("utf-16"), 1, "", "not UTF-8"),
    "empty": (b"", 1, "", "The file is empty"),
    "only whitespace": (b"  \r\n\r\n", 1, "", "The file is empty"),
    "no header, only data": (lines(GOOD), 1, "e1@example.com", "Unknown column"),
    "no separator in the header": (b"employee_number\nE1\n", 1, "", "header"),
    "header only": (lines(H), 2, "", "no employees"),
    "unknown column": (lines(H + ",salary", GOOD + ",100"), 1, "salary", "Unknown column"),
    "missing column": (lines(H.replace(",language", ""), GOOD[:-3]), 1, "language", "missing"),
    "duplicate column": (lines(H + ",email", GOOD + ",x@example.com"), 1, "email", "more than once"),
    "nameless column": (lines(H + ",", GOOD + ",x"), 1, "", "has no name"),
    "short row": (lines(H, "E1,e1@example.com,Fien"), 2, "", "has 3 values"),
    "long row": (lines(H, GOOD + ",surplus"), 2, "", "has 10 values"),
    "duplicate employee number": (lines(H, GOOD, GOOD.replace("e1@", "e2@")), 3, "employee_number", "also in row 2"),
    "missing employee number": (lines(H, GOOD.replace("E1,", ",", 1)), 2, "employee_number", "required"),
    "duplicate e-mail": (lines(H, GOOD, GOOD.replace("E1", "E2").replace("e1@", "E1@")), 3, "email",
                         "also in row 2"),
    "e-mail of another employee": (lines(H, GOOD.replace("e1@example.com", "alice@example.com")), 2, "email",
                                   "belongs to employee E0001"),
    "existing employee taking another account's e-mail": (
        lines(H, "E0002,nina@example.com,Bob,Example,,,,,en"), 2, "email", "belongs to another user account"),
    "an approver's new address": (lines(H, "E0002,e1@example.com,Bob,Example,,,,,en"), 2, "email",
                                  "Employee E0002 has a privileged account"),
    "an approver's new name": (lines(H, "E0002,bob@example.com,Robert,Example,,,,,en"), 2, "first_name",
                               "an import cannot change its name"),
    "invalid e-mail": (lines(H, GOOD.replace("e1@example.com", "e1.example.com")), 2, "email", "not a valid"),
    "missing e-mail": (lines(H, GOOD.replace("e1@example.com", "")), 2, "email", "required"),
    "impossible date": (lines(H, GOOD.replace("2024-01-01", "2024-02-30")), 2, "start_date", "not a date"),
    "Dutch date": (lines(H, GOOD.replace("2024-01-01", "01-03-2024")), 2, "start_date", "YYYY-MM-DD"),
    "invalid end date": (lines(H, GOOD.replace(",,nl", ",soon,nl")), 2, "end_date", "not a date"),
    "end before start": (lines(H, GOOD.replace(",,nl", ",2023-12-31,nl")), 2, "end_date", "before the start date"),
    "language": (lines(H, GOOD.replace(",nl", ",de")), 2, "language", "“nl” or “en”"),
    "empty language": (lines(H, GOOD[:-2]), 2, "language", "“nl” or “en”"),
    "unknown manager": (lines(H, GOOD.replace("Sales,,", "Sales,X9,")), 2, "manager_employee_number",
                        "no employee X9"),
    "own manager": (lines(H, GOOD.replace("Sales,,", "Sales,E1,")), 2, "manager_employee_number",
                    "cannot manage themselves"),
    "managers in a loop": (lines(H, GOOD.replace("Sales,,", "Sales,E2,"),
                                 GOOD.replace("E1,e1", "E2,e2").replace("Sales,,", "Sales,E1,")),
                           2, "manager_employee_number", "loop: E1 → E2 → E1"),
    "loop through the database": (lines(H, "E0002,bob@example.com,Bob,Example,,E0001,,,en"), 2,
                                  "manager_employee_number", "loop: E0002 → E0001 → E0002"),
    "too long employee number": (lines(H, GOOD.replace("E1,", "E" * 33 + ",", 1)), 2, "employee_number",
                                 "At most 32 characters"),
    "too long first name": (lines(H, GOOD.replace("Fien", TOO_LONG)), 2, "first_name", "At most 150 characters"),
    "too long department": (lines(H, GOOD.replace("Sales", "S" * 201)), 2, "department", "At most 200 characters"),
    "too long e-mail": (lines(H, GOOD.replace("e1@", "e" * 140 + "@")), 2, "email", "At most 150 characters"),
    "binary junk": (bytes(range(256)) * 4, 2, "", "not UTF-8"),  # the first byte >= 128 is on line 2
    "binary junk that is UTF-8": (b"\x01\x02,\x03\n\x00,\x05\n", 2, "", "NUL characters"),
    "control characters": (b"\x01\x02,\x03\n\x04,\x05\n", 1, "\x01\x02", "Unknown column"),
    "unterminated quote": (lines(H, '"E1,e1@example.com,Fien,Jansen,Sales,,2024-01-01,,nl'), 2, "",
                           "has 1 values"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_file_with_an_error_is_rejected_with_row_column_and_message_and_changes_nothing(alice, nina, case):
    content, row, column, message = BAD_FILES[case]
    before = snapshot()

    result = run(content)

    assert any(
        (error.row, error.column) == (row, column) and message in error.message for error in result.errors
    ), result.errors
    assert snapshot() == before
    assert not User.objects.filter(email="e1@example.com").exists()
    rejected = ImportRun.objects.get()
    assert rejected.outcome == ImportRun.Outcome.REJECTED
    assert {"row": row, "column": column} in [{"row": e["row"], "column": e["column"]} for e in rejected.errors]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EMPLOYEES_IMPORTED).exists()


def test_one_bad_row_rejects_the_whole_file(db):
    rows = [person(f"E{n}") for n in range(50)]
    rows[37]["language"] = "fr"

    result = run(csv_file(rows))

    assert [(e.row, e.column) for e in result.errors] == [(39, "language")]
    assert Employee.objects.count() == 0 and User.objects.count() == 0


def test_every_problem_is_reported_sorted_by_row_and_the_stored_list_is_capped(db):
    rows = [person(f"E{n}", email="not-an-address", language="xx") for n in range(600)]

    result = run(csv_file(rows))

    assert len(result.errors) == 1200
    assert [(e.row, e.column) for e in result.errors[:3]] == [(2, "email"), (2, "language"), (3, "email")]
    stored = ImportRun.objects.get().errors
    assert len(stored) == imports.MAX_STORED_ERRORS + 1
    assert stored[-1] == {"row": None, "column": "", "message": "… and 200 more problems."}


def test_a_database_refusal_while_applying_is_reported_and_rolls_everything_back(db, monkeypatch):
    def refuse(*args, **kwargs):
        from django.db import IntegrityError

        raise IntegrityError("duplicate key")

    monkeypatch.setattr(Employee.objects, "bulk_create", refuse)

    result = run(csv_file([person("E1")]))

    assert "nothing was changed" in result.errors[0].message
    assert User.objects.count() == 0 and Department.objects.count() == 0
    assert ImportRun.objects.get().outcome == ImportRun.Outcome.REJECTED


# Queries ------------------------------------------------------------------------------------


def queries_to_apply(content):
    with CaptureQueriesContext(connection) as queries:
        result = run(content)
    assert result.errors == []
    return len(queries.captured_queries)


def test_applying_200_or_400_rows_takes_the_same_number_of_queries(db):
    created_200 = queries_to_apply(csv_file(team(200, prefix="A", department="Alpha")))
    created_400 = queries_to_apply(csv_file(team(400, prefix="B", department="Beta")))
    assert created_200 == created_400

    changed = {"last_name": "Changed", "department": "Gamma"}
    updated_200 = queries_to_apply(csv_file([{**row, **changed} for row in team(200, prefix="A")]))
    updated_400 = queries_to_apply(csv_file([{**row, **changed, "department": "Delta"}
                                             for row in team(400, prefix="B")]))
    assert updated_200 == updated_400


# The command --------------------------------------------------------------------------------


def test_command_imports_a_good_file_and_prints_a_summary(db, tmp_path, capsys):
    path = tmp_path / "hr-export.csv"
    path.write_bytes(csv_file(team(5)))

    call_command("import_employees", str(path))

    out = capsys.readouterr().out
    assert "Imported hr-export.csv" in out
    assert "5 rows: 5 created, 0 updated, 0 unchanged, 0 leavers; 0 employees in the database are not in" in out
    assert "per field" not in out
    run_record = ImportRun.objects.get()
    assert run_record.by is None and run_record.source == "hr-export.csv"
    assert ImportChange.objects.filter(run=run_record, action="created").count() == 5


def test_command_summary_lists_changes_per_field_in_column_order(db, tmp_path, capsys):
    path = tmp_path / "hr-export.csv"
    path.write_bytes(csv_file([person("E1"), person("E2")]))
    call_command("import_employees", str(path))
    capsys.readouterr()
    path.write_bytes(csv_file([person("E1", department="Legal", language="en"), person("E2", department="Legal")]))

    call_command("import_employees", str(path), "--dry-run")

    assert capsys.readouterr().out.rstrip().endswith("Updated employees per field: department 2, language 1.")


def test_command_dry_run_reports_and_changes_nothing(db, tmp_path, capsys):
    path = tmp_path / "hr-export.csv"
    path.write_bytes(csv_file(team(5)))

    call_command("import_employees", str(path), "--dry-run")

    assert "Dry run of hr-export.csv, nothing was changed" in capsys.readouterr().out
    assert Employee.objects.count() == 0
    assert ImportRun.objects.get().outcome == ImportRun.Outcome.DRY_RUN


def test_command_rejects_a_bad_file_with_a_per_row_report(db, tmp_path, capsys):
    path = tmp_path / "hr-export.csv"
    path.write_bytes(csv_file([person("E1"), person("E2", email="nope")]))

    with pytest.raises(CommandError, match=r"hr-export.csv rejected: 1 problem\(s\), nothing was changed") as error:
        call_command("import_employees", str(path))

    assert error.value.returncode == 1
    assert "row 3, email: “nope” is not a valid e-mail address." in capsys.readouterr().out
    assert Employee.objects.count() == 0


def test_command_report_shows_the_first_50_problems(db, tmp_path, capsys):
    path = tmp_path / "hr-export.csv"
    path.write_bytes(csv_file([person(f"E{n}", language="xx") for n in range(80)]))

    with pytest.raises(CommandError, match="80 problem"):
        call_command("import_employees", str(path))

    out = capsys.readouterr().out.splitlines()
    assert len(out) == 51
    assert out[-1] == "... and 30 more"


@pytest.mark.parametrize("name", ["missing.csv", ""])
def test_command_refuses_a_missing_or_unreadable_file(db, tmp_path, name):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_employees", str(tmp_path / name))
    assert not ImportRun.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_command_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(csv_file([person("E1")]))
    bad.write_bytes(b"\xff\xfe junk")

    execute_from_command_line(["manage.py", "import_employees", str(good)])  # no SystemExit: exit code 0
    for path in (bad, tmp_path / "missing.csv"):
        with pytest.raises(SystemExit) as exit_:
            execute_from_command_line(["manage.py", "import_employees", str(path)])
        assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "bad.csv rejected" in err and "Cannot read" in err
    assert Employee.objects.count() == 1


# The upload page ----------------------------------------------------------------------------


def upload(content, name="people.csv", *, dry_run=True):
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    if dry_run:
        data["dry_run"] = "on"
    return data


def test_anonymous_visitors_are_sent_to_login(client, db):
    for response in (client.get(URL), client.post(URL, upload(csv_file([person("E1")]), dry_run=False))):
        assert response.status_code == 302
        assert response.url.startswith(reverse("account_login"))
    assert not Employee.objects.exists()


@pytest.mark.parametrize("who", ["alice", "arjen"])
def test_employees_and_auditors_get_403(db, client_as, who, request):
    client = client_as(request.getfixturevalue(who))

    assert client.get(URL).status_code == 403
    assert client.post(URL, upload(csv_file([person("E1")]), dry_run=False)).status_code == 403
    assert not Employee.objects.filter(employee_number="E1").exists()


def test_hr_sees_the_upload_form_with_dry_run_ticked(client_as, hilde):
    response = client_as(hilde).get(URL)

    content = response.content.decode()
    assert response.status_code == 200
    assert "Import employees" in content
    assert 'enctype="multipart/form-data"' in content
    assert 'name="dry_run" id="id_dry_run" checked' in content
    assert "No import has been applied yet." in content


def test_hr_dry_run_shows_what_would_change_and_offers_to_apply(client_as, hilde):
    response = client_as(hilde).post(URL, upload(csv_file(team(3))))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Dry run of people.csv: nothing was changed" in content
    assert "<th scope=\"row\">New employees</th><td>3</td>" in content
    # Applying needs no second upload: the page offers the file it checked.
    assert ">Apply this file</button>" in content and 'name="token" value="' in content
    assert 'name="dry_run" id="id_dry_run" checked' in content  # a next file starts as a dry run again
    assert Employee.objects.count() == 0
    assert ImportRun.objects.get().by == hilde


def test_hr_applies_a_file_and_sees_the_last_import_time(client_as, hilde):
    client = client_as(hilde)

    response = client.post(URL, upload(csv_file(team(3)), "april.csv", dry_run=False))

    assert response.status_code == 200
    assert "april.csv was imported." in response.content.decode()
    assert Employee.objects.count() == 3
    applied = ImportRun.objects.get()
    content = client.get(URL).content.decode()
    assert f'Last successful import: <time datetime="{timezone.localtime(applied.finished_at).isoformat()}' in content
    assert "april.csv" in content and "applied" in content


def test_hr_sees_the_problems_of_a_rejected_file_with_400(client_as, hilde):
    content = csv_file([person("E1"), person("E2", start_date="1-2-2024")])

    response = client_as(hilde).post(URL, upload(content, dry_run=False))

    page = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in page
    assert "people.csv was rejected because of 1 problem. Nothing was changed." in page
    assert "<td>3</td><td><code>start_date</code></td><td>“1-2-2024” is not a date." in page
    assert Employee.objects.count() == 0


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "Choose a CSV file to upload."),
        ({"file": SimpleUploadedFile("people.csv", b"", content_type="text/csv")}, "The file is empty."),
        ({"file": SimpleUploadedFile("people.xlsx", b"PK\x03\x04junk")}, "Choose a .csv file."),
        ({"file": SimpleUploadedFile("people", b"a,b")}, "Choose a .csv file."),
    ],
)
def test_bad_uploads_get_a_form_error_and_400(client_as, hilde, data, message):
    response = client_as(hilde).post(URL, data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ImportRun.objects.exists()


def test_files_over_the_size_limit_are_refused(client_as, hilde, settings):
    content = csv_file([person("E1")])
    # Within the body limit by the multipart envelope only: the form refuses the file itself.
    settings.IMPORT_MAX_BYTES = len(content) - 1
    settings.UPLOAD_LIMITS = {**settings.UPLOAD_LIMITS, "guidelines:hr_import": len(content) + 4096}

    response = client_as(hilde).post(URL, upload(content))

    assert response.status_code == 400
    assert "The file is larger than" in response.content.decode()
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 100, b"\x00" * 1000, b"\xef\xbb\xbf", "ëmployee;é\n".encode("utf-16"), b'"\n"\n"'],
)
def test_junk_files_are_answered_with_400_never_500(client_as, hilde, content):
    response = client_as(hilde).post(URL, upload(content, "junk.csv", dry_run=False))

    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert ImportRun.objects.get().outcome == ImportRun.Outcome.REJECTED


def test_the_result_page_lists_the_first_changes_and_counts_the_rest(client_as, hilde, monkeypatch):
    monkeypatch.setattr(hr_import, "CHANGES_SHOWN", 2)

    response = client_as(hilde).post(URL, upload(csv_file(team(5)), dry_run=False))

    page = response.content.decode()
    assert response.status_code == 200
    assert f"Who changed (kept as evidence with import run #{ImportRun.objects.get().pk})" in page
    assert page.count('<span class="badge badge-ok">created</span>') == 2
    assert "… and the changes of 3 more employees." in page
    assert ImportChange.objects.count() == 5


def test_the_result_page_shows_updates_first_with_counts_per_field(client_as, hilde):
    run(csv_file([person("E1"), person("E2")]))

    response = client_as(hilde).post(URL, upload(csv_file([person("E1"), person("E2", end_date="2020-01-01",
                                                                                 start_date="2019-01-01"),
                                                           person("N1")])))

    page = response.content.decode()
    assert "Updated employees per changed field" in page
    assert "<tr><th scope=\"row\">Account active</th><td>1</td></tr>" in page
    first_update = page.index('<span class="meta">E2</span><br><span class="badge badge-muted">updated')
    assert first_update < page.index('<span class="meta">N1</span><br><span class="badge badge-ok">created')
    e2 = page[first_update:page.index("</tr>", first_update)]
    assert ('<span class="field-name">Account active</span>: <del><span class="visually-hidden">from </span>yes</del>'
            ' → <ins><span class="visually-hidden">to </span>no</ins>') in e2
    assert "leaver" in e2
    assert "more employee" not in page


def test_the_page_lists_the_five_most_recent_imports(client_as, hilde):
    run(b"", by=hilde)
    for _ in range(6):
        run(csv_file([person("E1")]), dry_run=True)

    content = client_as(hilde).get(URL).content.decode()

    assert content.count("<td>people.csv</td>") == 5
    assert "command line" in content

