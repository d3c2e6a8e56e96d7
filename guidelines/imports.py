"""Employee import from the HR system's CSV export: parse → validate → plan → apply.

The file (SPEC "Employee CSV") has a header row with exactly these columns, in any order:
employee_number, email, first_name, last_name, department, manager_employee_number, start_date,
end_date, language. Comma or semicolon separated (sniffed from the header line), UTF-8 with or
without BOM. Dates are YYYY-MM-DD; end_date stays empty while someone is employed.

Rules, in the order an HR officer asks about them:

- Upsert by employee number. The e-mail address is the login: user.username and user.email are
  both the lowercased address. New employees get a user with an unusable password (they set one
  through password reset or sign in with SSO). A user account without an employee record that
  has the same address is linked to the new employee instead of creating a second account.
  An address that another employee still has in the database is refused, even when the same
  file gives that employee a new one: such swaps take two imports.
- Departments are matched by exact name and created when new. Managers are resolved by
  employee number, from the file or, failing that, from the database.
- Leavers are rows with an end date. The user's active flag is left alone, with one exception:
  once the end date has been reached (end_date <= today), the user is deactivated, so a leaver
  cannot sign in. Clearing the end date later does not reactivate the account; that stays a
  deliberate decision in the admin. Audiences already drop leavers from their end date
  (Employee.objects.employed_on).
- Employees in the database but not in the file are neither deleted nor changed, only counted
  ("not in file"): their acknowledgements are evidence and PROTECT them.
- A file with any error changes nothing and is answered with every problem found (row as in the
  file, the header being row 1; column; message). A correct file is applied in one transaction.
- Every run, applied, dry run or rejected, is recorded once as an ImportRun (the table is
  append-only); an applied run also writes an audit event.

Everything is loaded and compared in bulk, so the number of queries does not grow with the file.
"""

import csv
import io
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import AuditEvent, Department, Employee, ImportRun
from .services import record_audit_event

logger = logging.getLogger(__name__)

COLUMNS = (
    "employee_number",
    "email",
    "first_name",
    "last_name",
    "department",
    "manager_employee_number",
    "start_date",
    "end_date",
    "language",
)
COLUMN_ORDER = {name: index for index, name in enumerate(COLUMNS)}
LANGUAGES = ("nl", "en")
BATCH_SIZE = 1000
MAX_LEVELS = 10  # of the org chart inserted level by level; see _managers_first
MAX_STORED_ERRORS = 1000
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class RowError:
    row: int | None
    column: str
    message: str

    def as_dict(self):
        return {"row": self.row, "column": self.column, "message": self.message}


class ImportRejected(Exception):
    """The file cannot be read as an employee CSV at all (encoding, header)."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


@dataclass(slots=True)
class Row:
    """One data row: stripped text values; the e-mail address and language lowercased."""

    number: int
    width: int  # how many values the row had, to report short rows
    employee_number: str
    email: str
    first_name: str
    last_name: str
    department: str
    manager_employee_number: str
    start_date: str
    end_date: str
    language: str


class Current(NamedTuple):
    """An employee as the database has it now (a tuple: there may be 100,000s of them)."""

    pk: int
    user_id: int
    username: str
    email: str
    first_name: str
    last_name: str
    is_active: bool
    department: str | None
    manager: str | None
    start_date: date | None
    end_date: date | None
    language: str


class Account(NamedTuple):
    user_id: int
    is_active: bool


@dataclass
class Existing:
    employees: dict  # employee number → Current
    employee_by_email: dict  # lowercased username or e-mail → employee number
    accounts: dict  # lowercased username or e-mail → Account, for users without an employee record
    departments: dict  # name → pk


@dataclass(slots=True)
class Change:
    row: Row
    user_id: int | None  # None: a new user account is needed
    start_date: date | None
    end_date: date | None
    is_active: bool
    user_changed: bool = True
    employee_changed: bool = True


@dataclass
class ImportPlan:
    existing: Existing
    rows: int
    creates: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    unchanged: int = 0
    leavers: int = 0
    not_in_file: int = 0
    new_departments: list = field(default_factory=list)

    def counts(self):
        return {
            "rows": self.rows,
            "created": len(self.creates),
            "updated": len(self.updates),
            "unchanged": self.unchanged,
            "leavers": self.leavers,
            "not_in_file": self.not_in_file,
        }


@dataclass
class ImportResult:
    run: ImportRun
    plan: ImportPlan | None
    errors: list

    @property
    def counts(self):
        return self.plan.counts() if self.plan else {"rows": self.run.rows}


@cache
def max_lengths():
    User = get_user_model()
    user_field = User._meta.get_field
    return {
        "employee_number": Employee._meta.get_field("employee_number").max_length,
        # The address is the username too, whose column is the narrower one.
        "email": min(user_field("username").max_length, user_field("email").max_length),
        "first_name": user_field("first_name").max_length,
        "last_name": user_field("last_name").max_length,
        "department": Department._meta.get_field("name").max_length,
        "manager_employee_number": Employee._meta.get_field("employee_number").max_length,
    }


# Parse --------------------------------------------------------------------------------------


def parse_csv(file_bytes):
    """The data rows of the file; raises ImportRejected when the file itself is unreadable."""
    try:
        text = file_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = file_bytes.count(b"\n", 0, exc.start) + 1
        raise ImportRejected([RowError(row, "", _(
            "The file is not UTF-8 text (unreadable byte at position %(position)d). "
            "Export it from the HR system as CSV in UTF-8."
        ) % {"position": exc.start + 1})]) from None
    if not text.strip():
        raise ImportRejected([RowError(1, "", _("The file is empty."))])
    if "\x00" in text:
        # Binary content; PostgreSQL could not store these characters either.
        row = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportRejected([RowError(row, "", _("The file contains NUL characters, so it is not a CSV text file."))])

    end_of_header = text.find("\n")
    header_line = text if end_of_header < 0 else text[:end_of_header]
    if "," not in header_line and ";" not in header_line:
        raise ImportRejected([RowError(1, "", _(
            "The first row must be a header with the column names, separated by commas or semicolons."
        ))])
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip().lower() for name in next(reader)]
        positions = _check_header(header)
        width = len(header)
        rows = []
        line = reader.line_num
        for values in reader:
            # A record starts on the line after the previous one ended (quoted values may span lines).
            number, line = line + 1, reader.line_num
            if not any(value.strip() for value in values):
                continue  # blank lines and rows of bare separators, as spreadsheets export them
            found = len(values) if any(value.strip() for value in values[width:]) else min(len(values), width)
            values += [""] * (width - len(values))
            row = Row(number, found, *(values[position].strip() for position in positions))
            row.email, row.language = row.email.lower(), row.language.lower()
            rows.append(row)
    except csv.Error as exc:
        raise ImportRejected([RowError(reader.line_num, "", _("The file is not valid CSV: %(problem)s.")
                                       % {"problem": exc})]) from None
    if not rows:
        raise ImportRejected([RowError(2, "", _("The file has a header but no employees."))])
    return rows


def _check_header(header):
    """Positions of COLUMNS in the header, or ImportRejected listing every problem with it."""
    errors = []
    seen = set()
    for position, name in enumerate(header, start=1):
        if not name:
            errors.append(RowError(1, "", _("Column %(position)d has no name.") % {"position": position}))
        elif name in seen:
            errors.append(RowError(1, name, _("The column “%(name)s” appears more than once.") % {"name": name}))
        elif name not in COLUMN_ORDER:
            errors.append(RowError(1, name, _("Unknown column “%(name)s”. The columns are: %(columns)s.")
                                   % {"name": name, "columns": ", ".join(COLUMNS)}))
        seen.add(name)
    for name in COLUMNS:
        if name not in seen:
            errors.append(RowError(1, name, _("The column “%(name)s” is missing.") % {"name": name}))
    if errors:
        raise ImportRejected(errors)
    return [header.index(name) for name in COLUMNS]


# Validate -----------------------------------------------------------------------------------


def load_existing():
    """Every employee, unlinked account and department, in three queries."""
    User = get_user_model()
    employees, employee_by_email = {}, {}
    rows = (
        Employee.objects.order_by()
        .values_list("employee_number", "pk", "user_id", "user__username", "user__email", "user__first_name",
                     "user__last_name", "user__is_active", "department__name", "manager__employee_number",
                     "start_date", "end_date", "language")
        .iterator(chunk_size=5000)
    )
    for number, *values in rows:
        current = Current(*values)
        employees[number] = current
        employee_by_email[current.username.lower()] = number
        employee_by_email[current.email.lower()] = number
    accounts = {}
    unlinked = User.objects.filter(employee__isnull=True).order_by().values_list("pk", "username", "email",
                                                                                 "is_active")
    for pk, username, email, is_active in unlinked.iterator(chunk_size=5000):
        accounts[username.lower()] = accounts[email.lower()] = Account(pk, is_active)
    accounts.pop("", None)  # accounts without an e-mail address
    departments = dict(Department.objects.values_list("name", "pk"))
    return Existing(employees, employee_by_email, accounts, departments)


def validate(rows, *, existing=None):
    """Every problem in the rows, sorted by row and column; an empty list means the file can be applied."""
    if existing is None:
        existing = load_existing()
    limits = max_lengths()
    errors = []
    add = errors.append
    row_of_number, row_of_email = {}, {}

    for row in rows:
        if row.width != len(COLUMNS):
            add(RowError(row.number, "", _("This row has %(found)d values; the header has %(expected)d.")
                         % {"found": row.width, "expected": len(COLUMNS)}))
        for column, limit in limits.items():
            value = getattr(row, column)
            if len(value) > limit:
                add(RowError(row.number, column, _("At most %(limit)d characters (this value has %(length)d).")
                             % {"limit": limit, "length": len(value)}))

        number = row.employee_number
        if not number:
            add(RowError(row.number, "employee_number", _("An employee number is required.")))
        elif number in row_of_number:
            add(RowError(row.number, "employee_number", _("Employee number %(number)s is also in row %(row)d.")
                         % {"number": number, "row": row_of_number[number]}))
        else:
            row_of_number[number] = row.number

        email_error = _email_error(row, existing, row_of_email)
        if email_error:
            add(RowError(row.number, "email", email_error))

        start_date = end_date = None
        for column in ("start_date", "end_date"):
            value = getattr(row, column)
            if value:
                day = parse_date(value)
                if day is None:
                    add(RowError(row.number, column, _("“%(value)s” is not a date. Use YYYY-MM-DD, e.g. 2025-03-01.")
                                 % {"value": value}))
                elif column == "start_date":
                    start_date = day
                else:
                    end_date = day
        if start_date and end_date and end_date < start_date:
            add(RowError(row.number, "end_date", _("The end date is before the start date (%(start)s).")
                         % {"start": row.start_date}))

        if row.language not in LANGUAGES:
            add(RowError(row.number, "language", _("The language must be “nl” or “en”, not “%(value)s”.")
                         % {"value": row.language}))

    errors.extend(_manager_errors(rows, existing, row_of_number))
    errors.sort(key=lambda error: (error.row or 0, COLUMN_ORDER.get(error.column, -1)))
    return errors


def _email_error(row, existing, row_of_email):
    email = row.email
    if not email:
        return _("An e-mail address is required.")
    try:
        validate_email(email)
    except ValidationError:
        return _("“%(value)s” is not a valid e-mail address.") % {"value": email}
    if email in row_of_email:
        return _("The e-mail address %(email)s is also in row %(row)d.") % {"email": email, "row": row_of_email[email]}
    row_of_email[email] = row.number
    owner = existing.employee_by_email.get(email)
    if owner is not None and owner != row.employee_number:
        return _("The e-mail address %(email)s belongs to employee %(number)s.") % {"email": email, "number": owner}
    if owner is None and email in existing.accounts and row.employee_number in existing.employees:
        # Only a new employee may take over an unlinked account; this one has its own.
        return _("The e-mail address %(email)s belongs to another user account.") % {"email": email}
    return None


def _manager_errors(rows, existing, row_of_number):
    """Unknown managers, people managing themselves, and loops in the resulting chains of managers."""
    errors = []
    managers = {number: current.manager for number, current in existing.employees.items()}
    for row in rows:
        manager = row.manager_employee_number
        if not manager:
            managers[row.employee_number] = None
        elif manager == row.employee_number:
            errors.append(RowError(row.number, "manager_employee_number", _("An employee cannot manage themselves.")))
            managers[row.employee_number] = None
        elif manager not in row_of_number and manager not in existing.employees:
            errors.append(RowError(row.number, "manager_employee_number",
                                   _("There is no employee %(number)s in the file or the database.")
                                   % {"number": manager}))
            managers[row.employee_number] = None
        else:
            managers[row.employee_number] = manager

    # Each employee is walked once: O(employees), however long the chains.
    done = set()
    for row in rows:
        path, on_path = [], {}
        number = row.employee_number
        while number is not None and number not in done and number not in on_path:
            on_path[number] = len(path)
            path.append(number)
            number = managers.get(number)
        if number is not None and number in on_path:
            loop = path[on_path[number]:]
            # Reported once, on the first row of the loop; a loop only in the database is not this file's.
            rows_in_loop = [row_of_number[member] for member in loop if member in row_of_number]
            if rows_in_loop:
                errors.append(RowError(min(rows_in_loop), "manager_employee_number",
                                       _("The managers form a loop: %(loop)s.")
                                       % {"loop": " → ".join([*loop, loop[0]])}))
        done.update(path)
    return errors


def parse_date(value):
    if not ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# Plan and apply -----------------------------------------------------------------------------


def plan_import(rows, *, existing=None, today=None):
    """What applying the (valid) rows would change. Reads nothing if `existing` is given."""
    if existing is None:
        existing = load_existing()
    today = today or timezone.localdate()
    plan = ImportPlan(existing=existing, rows=len(rows))
    new_departments = {}
    for row in rows:
        start_date, end_date = parse_date(row.start_date), parse_date(row.end_date)
        has_left = end_date is not None and end_date <= today
        department = row.department or None
        if department and department not in existing.departments:
            new_departments[department] = True
        current = existing.employees.get(row.employee_number)
        if current is None:
            account = existing.accounts.get(row.email)
            is_active = account.is_active if account else True
            plan.creates.append(Change(row, account.user_id if account else None, start_date, end_date,
                                       is_active and not has_left))
            plan.leavers += end_date is not None
            continue

        is_active = current.is_active and not has_left
        user_changed = (row.email, row.email, row.first_name, row.last_name, is_active) != (
            current.username, current.email, current.first_name, current.last_name, current.is_active)
        employee_changed = (department, row.manager_employee_number or None, start_date, end_date,
                            row.language) != (current.department, current.manager, current.start_date,
                                              current.end_date, current.language)
        if user_changed or employee_changed:
            plan.updates.append(Change(row, current.user_id, start_date, end_date, is_active, user_changed,
                                       employee_changed))
        else:
            plan.unchanged += 1
        if end_date is not None and (end_date != current.end_date or is_active != current.is_active):
            plan.leavers += 1
    plan.not_in_file = len(existing.employees) - len(plan.updates) - plan.unchanged
    plan.new_departments = list(new_departments)
    return plan


def _unusable_password():
    # What set_unusable_password() stores, without its per-character random.choice (100,000s of users).
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)


def _upsert(model, objects, *, unique_fields, update_fields):
    """INSERT ... ON CONFLICT DO UPDATE in batches. bulk_update() would build a CASE expression per
    row and field, which takes seconds per thousand rows; this is one plain statement per batch."""
    model.objects.bulk_create(objects, batch_size=BATCH_SIZE, update_conflicts=True, unique_fields=unique_fields,
                              update_fields=update_fields)


def _managers_first(creates, in_database):
    """New employees in groups; each one's manager is in the database or in an earlier group.

    Org charts are a few levels deep, so inserting group by group gives every new employee its
    manager's id without a second pass over all of them. Past MAX_LEVELS the rest forms one group
    (a long chain must not cost a query per row), whose missing managers apply_import fills in after.
    """
    groups, placed, pending = [], set(), creates
    while pending:
        ready, waiting = [], []
        for change in pending:
            manager = change.row.manager_employee_number
            (ready if not manager or manager in in_database or manager in placed else waiting).append(change)
        if not ready or len(groups) == MAX_LEVELS - 1:
            groups.append(pending)
            break
        placed.update(change.row.employee_number for change in ready)
        groups.append(ready)
        pending = waiting
    return groups


def apply_import(plan, *, by, source, started_at=None):
    """Write the plan in one transaction: departments, accounts, then employees, managers first."""
    User = get_user_model()
    now = timezone.now()
    existing = plan.existing
    with transaction.atomic():
        department_ids = dict(existing.departments)
        created = Department.objects.bulk_create([Department(name=name) for name in plan.new_departments])
        department_ids.update((department.name, department.pk) for department in created)

        accountless = [change for change in plan.creates if change.user_id is None]
        new_users = [
            User(username=change.row.email, email=change.row.email, first_name=change.row.first_name,
                 last_name=change.row.last_name, is_active=change.is_active, password=_unusable_password(),
                 date_joined=now)
            for change in accountless
        ]
        User.objects.bulk_create(new_users, batch_size=BATCH_SIZE)
        new_user_ids = {change.row.employee_number: user.pk
                        for change, user in zip(accountless, new_users, strict=True)}
        del accountless, new_users
        # Existing accounts: matched on their id, so only these five columns change. The
        # password is never written; it only satisfies NOT NULL for the INSERT part.
        _upsert(User, [
            User(pk=change.user_id, username=change.row.email, email=change.row.email,
                 first_name=change.row.first_name, last_name=change.row.last_name, is_active=change.is_active,
                 password=UNUSABLE_PASSWORD_PREFIX, date_joined=now)
            for change in (*plan.creates, *plan.updates)
            if change.user_id is not None and change.user_changed
        ], unique_fields=["pk"], update_fields=["username", "email", "first_name", "last_name", "is_active"])

        employee_ids = {number: current.pk for number, current in existing.employees.items()}
        groups = [
            *_managers_first(plan.creates, existing.employees),
            [change for change in plan.updates if change.employee_changed],
        ]
        late = []
        for group in groups:
            employees = [
                Employee(user_id=change.user_id or new_user_ids[change.row.employee_number],
                         employee_number=change.row.employee_number,
                         department_id=department_ids.get(change.row.department),
                         manager_id=employee_ids.get(change.row.manager_employee_number),
                         start_date=change.start_date, end_date=change.end_date, language=change.row.language)
                for change in group
            ]
            _upsert(Employee, employees, unique_fields=["employee_number"],
                    update_fields=["department", "manager", "start_date", "end_date", "language"])
            employee_ids.update((person.employee_number, person.pk) for person in employees)
            late += [(person, change.row.manager_employee_number)
                     for person, change in zip(employees, group, strict=True)
                     if change.row.manager_employee_number and person.manager_id is None]
        for person, manager in late:
            person.manager_id = employee_ids[manager]
        _upsert(Employee, [person for person, _ in late], unique_fields=["employee_number"], update_fields=["manager"])

        run = _record_run(ImportRun.Outcome.APPLIED, by=by, source=source, started_at=started_at or now,
                          counts=plan.counts())
        record_audit_event(action=AuditEvent.Action.EMPLOYEES_IMPORTED, actor=by, import_run=run.pk,
                           source=run.source, **plan.counts())
    return run


def _record_run(outcome, *, by, source, started_at, counts, errors=()):
    stored = [error.as_dict() for error in errors[:MAX_STORED_ERRORS]]
    if len(errors) > MAX_STORED_ERRORS:
        more = len(errors) - MAX_STORED_ERRORS
        stored.append({"row": None, "column": "", "message": ngettext(
            "… and %(count)d more problem.", "… and %(count)d more problems.", more) % {"count": more}})
    return ImportRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        by=by,
        source=source.replace("\x00", "")[: ImportRun._meta.get_field("source").max_length],
        outcome=outcome,
        rows=counts.get("rows", 0),
        created=counts.get("created", 0),
        updated=counts.get("updated", 0),
        unchanged=counts.get("unchanged", 0),
        leavers=counts.get("leavers", 0),
        errors=stored,
    )


def run_import(file_bytes, *, source, by=None, dry_run=False):
    """Parse, validate and plan the file, then apply it unless dry_run. Records the run either way."""
    started_at = timezone.now()
    try:
        rows = parse_csv(file_bytes)
    except ImportRejected as rejected:
        run = _record_run(ImportRun.Outcome.REJECTED, by=by, source=source, started_at=started_at, counts={},
                          errors=rejected.errors)
        return ImportResult(run=run, plan=None, errors=rejected.errors)

    existing = load_existing()
    errors = validate(rows, existing=existing)
    if errors:
        run = _record_run(ImportRun.Outcome.REJECTED, by=by, source=source, started_at=started_at,
                          counts={"rows": len(rows)}, errors=errors)
        return ImportResult(run=run, plan=None, errors=errors)

    plan = plan_import(rows, existing=existing)
    if dry_run:
        run = _record_run(ImportRun.Outcome.DRY_RUN, by=by, source=source, started_at=started_at,
                          counts=plan.counts())
        return ImportResult(run=run, plan=plan, errors=[])
    try:
        run = apply_import(plan, by=by, source=source, started_at=started_at)
    except DatabaseError:
        # E.g. another import or an admin created the same account in the meantime. The
        # transaction rolled back, so nothing changed; say so rather than answer with a 500.
        logger.exception("Employee import of %s failed while applying; rolled back", source)
        errors = [RowError(None, "", _("The database refused the changes, so nothing was changed. "
                                       "Please try again; if it keeps failing, contact the administrators."))]
        run = _record_run(ImportRun.Outcome.REJECTED, by=by, source=source, started_at=started_at,
                          counts={"rows": len(rows)}, errors=errors)
        return ImportResult(run=run, plan=None, errors=errors)
    return ImportResult(run=run, plan=plan, errors=[])


def last_applied_import():
    return ImportRun.objects.filter(outcome=ImportRun.Outcome.APPLIED).defer("errors").first()
