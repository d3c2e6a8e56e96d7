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
- Privileged accounts are changed in the admin, never by an import. An account is privileged
  when it is staff or superuser, is in one of the role groups (HR, Approvers, Auditors), or holds
  a role permission (guidelines.manage, .approve, .audit) through any group or directly. A row
  that would link a new employee to such an account, or change the e-mail address or the first
  or last name of an existing employee whose account is privileged, is an error (so the whole file
  changes nothing): an import that could re-address an approver or an administrator would let
  whoever runs it take that account over with a password reset. The employee record of a
  privileged employee (department, manager, dates, language) is updated like anyone's, and a
  leaver's account is still deactivated once the end date is reached: an import can take access
  away, never hand it over. Its username and address are never rewritten, not even lowercased.
  The privileged accounts are checked again inside the transaction that applies the file.
- When an import changes the e-mail address of an existing account, a security notice goes to
  the old and the new address once the transaction has committed: the address was changed by
  the HR import, when, and to contact HR or security if that was not expected.
- Departments are matched by exact name and created when new. Managers are resolved by
  employee number, from the file or, failing that, from the database.
- Leavers are rows with an end date. The user's active flag is left alone, with one exception:
  once the end date has been reached (end_date <= today), the user is deactivated, so a leaver
  cannot sign in. Clearing the end date later does not reactivate the account; that stays a
  deliberate decision in the admin. Audiences already drop leavers from their end date
  (status.in_scope).
- Employees in the database but not in the file are neither deleted nor changed, only counted
  ("not in file"): their acknowledgements are evidence and PROTECT them.
- A file with any error changes nothing and is answered with every problem found (row as in the
  file, the header being row 1; column; message). A correct file is applied in one transaction,
  one import at a time (an advisory lock).
- A clean dry run by an HR user can be applied as it was checked ("Apply this file", see
  apply_checked_file): the same bytes, and only while planning them again changes exactly what the
  dry run showed; otherwise nothing changes and the dry run is said to be stale.
- Every run, applied, dry run or rejected, is recorded once as an ImportRun (the table is
  append-only); an applied run also writes an audit event with the number of updated employees
  per changed field, and a line in the security log (counts only). Refused privileged rows are
  logged there too (row numbers, employee numbers and account ids, never addresses or names).
- An applied run keeps every change as evidence: one ImportChange per created or updated
  employee with {field: [old, new]} for email (and username when it was not the address),
  first_name, last_name, is_active, department, manager_employee_number, start_date, end_date
  and language. For a new employee the old values are null, except for an account without
  employee record that was linked: that account's own values.

Everything is loaded and compared in bulk, so the number of queries does not grow with the file.

An identity provider's provisioning (SCIM, scim/) sends one employee at a time; each request is applied
through these same rules as an import of that one row (apply_rows, at the end of this module), which
loads only what the row concerns.
"""

import csv
import hashlib
import io
import json
import logging
import re
import secrets
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cache, partial
from itertools import chain, islice
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core import mail, signing
from django.core.cache import cache as shared_cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from psycopg import sql

from .access import privileged_users, require_permission
from .models import BATCH_ROWS, LANGUAGES, AuditEvent, Department, Employee, ImportChange, ImportRun
from .organisation import recorded
from .security import security_event
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
BATCH_SIZE = 1000
MAX_LEVELS = 10  # of the org chart inserted level by level; see _managers_first
MAX_STORED_ERRORS = 1000
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
USER_FIELDS = ("email", "username", "first_name", "last_name", "is_active")
EMPLOYEE_FIELDS = ("department", "manager_employee_number", "start_date", "end_date", "language")


@dataclass(frozen=True, slots=True)
class RowError:
    row: int | None
    column: str
    message: str
    # The row would have linked, renamed or re-addressed a privileged account (security log).
    privileged_user: int | None = field(default=None, compare=False)
    # "taken": the employee number or address belongs to someone else (provisioning answers 409).
    kind: str = field(default="", compare=False)

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
    username: str
    email: str
    first_name: str
    last_name: str


@dataclass
class Existing:
    employees: dict  # employee number → Current
    employee_by_email: dict  # lowercased username or e-mail → employee number
    accounts: dict  # lowercased username or e-mail → Account, for users without an employee record
    departments: dict  # name → pk
    privileged: frozenset = frozenset()  # ids of the users an import must not link, rename or re-address
    # False when only the rows' own employees, accounts and departments were loaded (load_concerned):
    # then nobody is "not in file", and `privileged` holds only the loaded accounts that are.
    complete: bool = True

    def user_ids(self):
        """The accounts loaded: every one for a complete load, else the rows' own."""
        return None if self.complete else (
            {current.user_id for current in self.employees.values()}
            | {account.user_id for account in self.accounts.values()})

    def is_privileged(self, user_id):
        return user_id in self.privileged


@dataclass(slots=True)
class Change:
    row: Row
    user_id: int | None  # None: a new user account is needed
    start_date: date | None
    end_date: date | None
    is_active: bool
    user_changed: bool = True
    employee_changed: bool = True
    fields: dict | None = None  # of an update: {field: [old, new]}; creates are diffed by created_fields()
    privileged: bool = False  # an update of a privileged account: only is_active may change on the user


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
    field_counts: Counter = field(default_factory=Counter)  # of the updates: field → employees changed

    def changes(self):
        """(employee number, action, {field: [old, new]}) for every update, then every create."""
        for change in self.updates:
            yield change.row.employee_number, ImportChange.Action.UPDATED, change.fields
        for change in self.creates:
            yield change.row.employee_number, ImportChange.Action.CREATED, created_fields(change, self.existing)

    def names(self):
        """The name of each employee in changes(), in the same order: as the database has it for an
        update (the file's name when the update renames them), as the file has it for a new employee."""
        for change in self.updates:
            current = self.existing.employees[change.row.employee_number]
            first = change.fields.get("first_name", (None, current.first_name))[1]
            last = change.fields.get("last_name", (None, current.last_name))[1]
            yield f"{first} {last}".strip() or change.fields.get("email", (None, current.email))[1]
        for change in self.creates:
            yield f"{change.row.first_name} {change.row.last_name}".strip() or change.row.email

    def digest(self):
        """A SHA-256 of everything applying the plan would change, its counts and new departments among it:
        the same file planned against the same data gives the same digest, any difference another one."""
        hashed = hashlib.sha256()
        hashed.update(json.dumps([self.counts(), sorted(self.new_departments)], default=str).encode())
        for change in self.changes():
            hashed.update(b"\n" + json.dumps(change, sort_keys=True, default=str).encode())
        return hashed.hexdigest()

    def linked_accounts(self):
        """New employees linked to an existing account without employee record."""
        return sum(change.user_id is not None for change in self.creates)

    def changed_fields(self):
        """{field: how many existing employees it changed}, in the order of the columns."""
        order = {name: index for index, name in enumerate((*USER_FIELDS, *EMPLOYEE_FIELDS))}
        return dict(sorted(self.field_counts.items(), key=lambda item: order[item[0]]))

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
    # Of a clean dry run by an HR user: the signed reference with which apply_checked_file applies the
    # very file that was checked (see keep_checked_file).
    apply_token: str = ""

    @property
    def counts(self):
        return self.plan.counts() if self.plan else {"rows": self.run.rows}

    def changes(self, limit):
        """The first `limit` changes (updates first) and how many there are in all."""
        if self.plan is None:
            return [], 0
        return list(islice(self.plan.changes(), limit)), len(self.plan.updates) + len(self.plan.creates)

    def listed_changes(self, limit):
        """The first `limit` changes as [(employee number, action, fields, name, employee pk or None)] and
        how many there are in all. One query: which of the listed employees exist (to link to them)."""
        changes, total = self.changes(limit)
        if not changes:
            return [], total
        names = islice(self.plan.names(), len(changes))
        pks = dict(Employee.objects.filter(employee_number__in=[change[0] for change in changes])
                   .values_list("employee_number", "pk"))
        return [(*change, name, pks.get(change[0])) for change, name in zip(changes, names, strict=True)], total


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


def privileged_user_ids(among=None):
    """Ids of the privileged users (access.privileged_users), in one query; only those `among` these ids
    when given (a few rows need not ask about everyone)."""
    users = privileged_users() if among is None else privileged_users().filter(pk__in=among)
    return frozenset(users.order_by().values_list("pk", flat=True))


EMPLOYEE_COLUMNS = ("employee_number", "pk", "user_id", "user__username", "user__email", "user__first_name",
                    "user__last_name", "user__is_active", "department__name", "manager__employee_number",
                    "start_date", "end_date", "language")
ACCOUNT_COLUMNS = ("pk", "is_active", "username", "email", "first_name", "last_name")


def _rows(queryset, columns, chunked):
    """values_list rows: streamed through a server-side cursor for everyone, read at once for a few."""
    rows = queryset.order_by().values_list(*columns)
    return rows.iterator(chunk_size=BATCH_ROWS) if chunked else rows


def _add_employees(employees, employee_by_email, queryset, chunked=True):
    for number, *values in _rows(queryset, EMPLOYEE_COLUMNS, chunked):
        current = Current(*values)
        employees[number] = current
        employee_by_email[current.username.lower()] = number
        employee_by_email[current.email.lower()] = number


def _accounts(queryset, chunked=True):
    accounts = {}
    for values in _rows(queryset, ACCOUNT_COLUMNS, chunked):
        account = Account(*values)
        accounts[account.username.lower()] = accounts[account.email.lower()] = account
    accounts.pop("", None)  # accounts without an e-mail address
    return accounts


def load_existing():
    """Every employee, unlinked account, department and privileged account, in four queries."""
    User = get_user_model()
    employees, employee_by_email = {}, {}
    _add_employees(employees, employee_by_email, Employee.objects.all())
    accounts = _accounts(User.objects.filter(employee__isnull=True))
    departments = dict(Department.objects.values_list("name", "pk"))
    return Existing(employees, employee_by_email, accounts, departments, privileged_user_ids())


# An address whose lowercase Python and PostgreSQL may see differently (a Kelvin sign K lowers to an
# ASCII k in Python): any character outside printable ASCII. Accounts with one are few, and
# load_concerned loads them all, so that it finds every address validate() would compare. On PostgreSQL
# the condition is written out as the partial index of migration 0023 has it, so the index answers.
NOT_PLAIN_ASCII = r"[^ -~]"


def _unusual_addresses():
    """Ids of the accounts whose username or address holds a character outside printable ASCII."""
    User = get_user_model()
    if connection.vendor != "postgresql":
        return set(User.objects.filter(Q(username__regex=NOT_PLAIN_ASCII) | Q(email__regex=NOT_PLAIN_ASCII))
                   .values_list("pk", flat=True))
    table = connection.ops.quote_name(User._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE (username::text ~ '{NOT_PLAIN_ASCII}' "
                       f"OR email::text ~ '{NOT_PLAIN_ASCII}')")
        return {pk for (pk,) in cursor.fetchall()}


def load_concerned(rows):
    """What validate() and plan_import() need to know about these rows, and nothing more: their employees,
    the employees and unlinked accounts that hold their addresses, their departments, their managers with
    every manager above them (to find loops), and the privileged accounts among them. For a handful of
    rows from a provisioning client, a few indexed queries instead of every employee."""
    User = get_user_model()
    numbers = {row.employee_number for row in rows} | {row.manager_employee_number for row in rows}
    numbers.discard("")
    same_address = Q(pk__in=[])
    for row in rows:
        if row.email:  # UPPER(column) = UPPER(value): the indexes of migration 0023
            same_address |= Q(username__iexact=row.email) | Q(email__iexact=row.email)
    holders = set(User.objects.filter(same_address).values_list("pk", flat=True)) | _unusual_addresses()
    employees, employee_by_email = {}, {}
    _add_employees(employees, employee_by_email,
                   Employee.objects.filter(Q(employee_number__in=numbers) | Q(user_id__in=holders)), chunked=False)
    # Up the chain of managers, one level per query (org charts are a few levels deep).
    above = {current.manager for current in employees.values()} - employees.keys() - {None}
    while above:
        _add_employees(employees, employee_by_email, Employee.objects.filter(employee_number__in=above),
                       chunked=False)
        above = {employees[number].manager for number in above if number in employees} - employees.keys() - {None}
    accounts = _accounts(User.objects.filter(pk__in=holders, employee__isnull=True), chunked=False)
    departments = dict(Department.objects.filter(name__in={row.department for row in rows})
                       .values_list("name", "pk"))
    existing = Existing(employees, employee_by_email, accounts, departments, complete=False)
    existing.privileged = privileged_user_ids(among=existing.user_ids())
    return existing


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

        email_error, kind = _email_error(row, existing, row_of_email)
        if email_error:
            add(RowError(row.number, "email", email_error, kind=kind))
        errors.extend(_privileged_errors(row, existing, check_email=not email_error))

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
    """(message, kind) of what is wrong with the row's address, or (None, ""); kind "taken": it is someone else's."""
    email = row.email
    if not email:
        return _("An e-mail address is required."), ""
    try:
        validate_email(email)
    except ValidationError:
        return _("“%(value)s” is not a valid e-mail address.") % {"value": email}, ""
    if email in row_of_email:
        return _("The e-mail address %(email)s is also in row %(row)d.") % {
            "email": email, "row": row_of_email[email]}, "taken"
    row_of_email[email] = row.number
    owner = existing.employee_by_email.get(email)
    if owner is not None and owner != row.employee_number:
        return _("The e-mail address %(email)s belongs to employee %(number)s.") % {
            "email": email, "number": owner}, "taken"
    if owner is None and email in existing.accounts and row.employee_number in existing.employees:
        # Only a new employee may take over an unlinked account; this one has its own.
        return _("The e-mail address %(email)s belongs to another user account.") % {"email": email}, "taken"
    return None, ""


def _privileged_errors(row, existing, *, check_email):
    """A new employee must not be linked to a privileged account, nor an existing one's account renamed or
    re-addressed (see the module docstring). The e-mail address is only checked when it is otherwise valid."""
    current = existing.employees.get(row.employee_number)
    if current is None:
        account = existing.accounts.get(row.email)
        if check_email and account is not None and existing.is_privileged(account.user_id):
            return [RowError(row.number, "email", _(
                "The e-mail address %(email)s belongs to a privileged account (staff, administrator, HR, approver "
                "or auditor): an import cannot link it to an employee. Change privileged accounts in the admin."
            ) % {"email": row.email}, privileged_user=account.user_id)]
        return []
    if not existing.is_privileged(current.user_id):
        return []
    errors = []
    if check_email and row.email != current.email.lower():
        errors.append(RowError(row.number, "email", _(
            "Employee %(number)s has a privileged account (staff, administrator, HR, approver or auditor): an "
            "import cannot change its e-mail address. Change privileged accounts in the admin."
        ) % {"number": row.employee_number}, privileged_user=current.user_id))
    for column in ("first_name", "last_name"):
        if getattr(row, column) != getattr(current, column).strip():
            errors.append(RowError(row.number, column, _(
                "Employee %(number)s has a privileged account (staff, administrator, HR, approver or auditor): an "
                "import cannot change its name. Change privileged accounts in the admin."
            ) % {"number": row.employee_number}, privileged_user=current.user_id))
    return errors


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
        privileged = existing.is_privileged(current.user_id)
        new_user = _account_values(row, is_active, current if privileged else None)
        fields = _user_fields(current, new_user)
        for name, old, new in (("department", current.department, department),
                               ("manager_employee_number", current.manager, row.manager_employee_number or None),
                               ("start_date", current.start_date, start_date), ("end_date", current.end_date, end_date),
                               ("language", current.language, row.language)):
            if old != new:
                fields[name] = [_plain(old), _plain(new)]
        if fields:
            plan.updates.append(Change(row, current.user_id, start_date, end_date, is_active,
                                       user_changed=not fields.keys().isdisjoint(USER_FIELDS),
                                       employee_changed=not fields.keys().isdisjoint(EMPLOYEE_FIELDS),
                                       fields=fields, privileged=privileged))
            plan.field_counts.update(fields.keys())
        else:
            plan.unchanged += 1
        if end_date is not None and (end_date != current.end_date or is_active != current.is_active):
            plan.leavers += 1
    if existing.complete:
        plan.not_in_file = len(existing.employees) - len(plan.updates) - plan.unchanged
    plan.new_departments = list(new_departments)
    return plan


def _plain(value):
    return value.isoformat() if isinstance(value, date) else value


def _account_values(row, is_active, privileged=None):
    """What the import writes to a user account. A privileged account (its Current or Account given) keeps
    its username, address and names: only a leaver's deactivation reaches it."""
    if privileged is not None:
        return {"username": privileged.username, "email": privileged.email, "first_name": privileged.first_name,
                "last_name": privileged.last_name, "is_active": is_active}
    return {"username": row.email, "email": row.email, "first_name": row.first_name, "last_name": row.last_name,
            "is_active": is_active}


def _user_fields(old, new):
    """{field: [old, new]} between an account as it is (Current or Account) and _account_values(). The
    username is only listed when it was not simply the address (otherwise it repeats the email entry)."""
    fields = {}
    for name in USER_FIELDS:
        before, after = getattr(old, name), new[name]
        if before != after and (name != "username" or old.username != old.email):
            fields[name] = [before, after]
    return fields


def created_fields(change, existing):
    """{field: [old, new]} of a new employee: old is null, except for the account it was linked to."""
    row = change.row
    new_user = _account_values(row, change.is_active)
    if change.user_id is not None:
        fields = _user_fields(existing.accounts[row.email], new_user)
    else:
        fields = {name: [None, new_user[name]] for name in USER_FIELDS
                  if name != "username" and new_user[name] not in ("", None)}
    for name, new in (("department", row.department), ("manager_employee_number", row.manager_employee_number),
                      ("start_date", change.start_date), ("end_date", change.end_date), ("language", row.language)):
        if new not in ("", None):
            fields[name] = [None, _plain(new)]
    return fields


class PrivilegedAccountsChanged(Exception):
    """Between validating and applying, an account the file would link, rename or re-address became privileged."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def _rewrites_account(change):
    """Does applying the change link an existing account, or change its username, address or names?"""
    if change.fields is None:  # a new employee: linking an account rewrites it
        return change.user_id is not None
    return not change.privileged and not change.fields.keys().isdisjoint(("email", "username", "first_name",
                                                                           "last_name"))


def _check_privileged_again(plan):
    """The privileged accounts as the applying transaction sees them (one query): an account promoted since
    the file was validated is refused with the same messages."""
    privileged = privileged_user_ids(among=plan.existing.user_ids())
    if privileged == plan.existing.privileged:
        return
    now_existing = Existing(plan.existing.employees, plan.existing.employee_by_email, plan.existing.accounts,
                            plan.existing.departments, privileged, plan.existing.complete)
    errors = [
        error
        for change in chain(plan.creates, plan.updates)
        if change.user_id in privileged and _rewrites_account(change)
        for error in _privileged_errors(change.row, now_existing, check_email=True)
    ]
    if errors:
        raise PrivilegedAccountsChanged(errors)


class AddressChange(NamedTuple):
    employee_number: str
    old: str
    new: str
    language: str


def _address_changes(plan):
    """Existing accounts whose e-mail address the plan changes (not just its case): they get a notice."""
    for change in plan.updates:
        email = change.fields.get("email")
        if email and email[0] and email[0].lower() != email[1]:
            yield AddressChange(change.row.employee_number, email[0], email[1], change.row.language)
    for change in plan.creates:
        if change.user_id is not None:
            old = plan.existing.accounts[change.row.email].email
            if old and old.lower() != change.row.email:
                yield AddressChange(change.row.employee_number, old, change.row.email, change.row.language)


def send_address_notices(changes, *, changed_at, run_id):
    """Tell the old and the new address that the HR import changed an account's address (after the commit).

    Each e-mail is sent on its own: one refused address must not keep the others from their notice."""
    mailer = mail.mailers.default
    sent = 0
    try:
        with mailer:
            for change in changes:
                for recipient in dict.fromkeys((change.old, change.new)):
                    try:
                        mailer.send_messages([address_notice(change, recipient, changed_at=changed_at,
                                                                 run_id=run_id)])
                        sent += 1
                    except Exception:
                        logger.exception("Address change notice for employee %s (import run #%s) failed",
                                         change.employee_number, run_id)
    except Exception:  # opening or closing the connection
        logger.exception("Address change notices of import run #%s failed after %d sent", run_id, sent)
    return sent


def _one_line(value):
    return " ".join(value.split())


def address_notice(change, recipient, *, changed_at, run_id):
    """The security notice for one address, in the employee's language (subject, text, HTML triplet).
    The HTML is autoescaped; values from the file are put on one line so they cannot add lines of their
    own to the plain text. Names are left out: whoever runs the import chooses them."""
    context = {
        "employee_number": _one_line(change.employee_number), "old_email": _one_line(change.old),
        "new_email": _one_line(change.new), "changed_at": changed_at, "run_id": run_id,
    }
    with translation.override(change.language):
        context["subject"] = " ".join(render_to_string("emails/address_changed_subject.txt", context).split())
        text = render_to_string("emails/address_changed.txt", context)
        html = render_to_string("emails/address_changed.html", context)
    message = mail.EmailMultiAlternatives(subject=context["subject"], body=text, to=[recipient],
                                          headers={"Auto-Submitted": "auto-generated"})
    message.attach_alternative(html, "text/html")
    return message


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


def apply_import(plan, *, by, source, started_at=None, history_source="import"):
    """Write the plan in one transaction, with the run it makes. The organisation's history names
    `history_source` ("import", or "scim" for provisioning) as where each change came from."""
    now = timezone.now()
    with transaction.atomic():
        _lock_imports()
        _check_privileged_again(plan)
        # The run first, so that the history of every change below names it (organisation.py).
        run = _record_run(ImportRun.Outcome.APPLIED, by=by, source=source, started_at=started_at or now,
                          counts=plan.counts())
        with recorded(source=history_source, by=by, import_run=run):
            _apply_changes(plan, now)
        _record_changes(run, plan.changes())
        record_audit_event(action=AuditEvent.Action.EMPLOYEES_IMPORTED, actor=by, import_run=run.pk,
                           source=run.source, **plan.counts(), changed_fields=plan.changed_fields(),
                           linked_accounts=plan.linked_accounts())
        address_changes = list(_address_changes(plan))
        if address_changes:
            transaction.on_commit(partial(send_address_notices, address_changes, changed_at=now, run_id=run.pk),
                                  robust=True)
    return run


IMPORT_LOCK_CLASS = 0x67696D70  # "gimp": the advisory-lock namespace of applying imports


def _lock_imports():
    """One import applies at a time: a transaction-scoped advisory lock (PostgreSQL; SQLite writes serially)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [IMPORT_LOCK_CLASS])


@contextmanager
def import_lock():
    """A transaction holding the import lock: what is read in it stays as read until an import inside it
    has applied (the lock is taken again there, which the same transaction may)."""
    with transaction.atomic():
        _lock_imports()
        yield


def _apply_changes(plan, now):
    """Departments, accounts, then employees, managers first."""
    User = get_user_model()
    existing = plan.existing
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
    # Existing accounts: matched on their id, so only these five columns change (a privileged
    # account keeps its own values but the active flag). The password is never written; it
    # only satisfies NOT NULL for the INSERT part.
    _upsert(User, [
        User(pk=change.user_id, password=UNUSABLE_PASSWORD_PREFIX, date_joined=now,
             **_account_values(change.row, change.is_active,
                               existing.employees[change.row.employee_number] if change.privileged else None))
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


def _can_copy():
    return connection.vendor == "postgresql"


def _record_changes(run, changes):
    """The ImportChange rows of an applied run: one PostgreSQL COPY (five times faster than INSERT for
    100,000 created employees), elsewhere bulk_create in batches. Either way the rows are streamed."""
    if not _can_copy():
        while batch := list(islice(changes, BATCH_SIZE)):
            ImportChange.objects.bulk_create([
                ImportChange(run=run, employee_number=number, action=action, fields=fields)
                for number, action, fields in batch
            ])
        return
    columns = [ImportChange._meta.get_field(name).column for name in ("run", "employee_number", "action", "fields")]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(ImportChange._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for number, action, fields in changes:
            copy.write_row((run.pk, number, action, json.dumps(fields)))


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


def _log_privileged_refusal(errors, rows, *, by, request, run, dry_run):
    """One security log line for the rows refused because they touch privileged accounts (no addresses)."""
    refused = [error for error in errors if error.privileged_user is not None]
    if not refused:
        return
    numbers = {row.number: row.employee_number for row in rows}
    security_event("import_privileged_account_refused", request=request, user=by, outcome="denied", run=run.pk,
                   source=run.source, dry_run=dry_run, rows=sorted({error.row for error in refused}),
                   employee_numbers=sorted({numbers[error.row] for error in refused}),
                   accounts=sorted({error.privileged_user for error in refused}))


def run_import(file_bytes, *, source, by=None, dry_run=False, request=None):
    """Parse, validate and plan the file, then apply it unless dry_run. Records the run either way.

    `by` is the HR user importing (who needs guidelines.manage), or None for the server's operator
    running the import_employees command. `request`, when given, only adds the client's address to the
    security log."""
    if by is not None:
        require_permission(by, "guidelines.manage")
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
        _log_privileged_refusal(errors, rows, by=by, request=request, run=run, dry_run=dry_run)
        return ImportResult(run=run, plan=None, errors=errors)

    plan = plan_import(rows, existing=existing)
    if dry_run:
        run = _record_run(ImportRun.Outcome.DRY_RUN, by=by, source=source, started_at=started_at,
                          counts=plan.counts())
        token = keep_checked_file(file_bytes, run=run, plan=plan) if by is not None else ""
        return ImportResult(run=run, plan=plan, errors=[], apply_token=token)
    return _apply(plan, rows, by=by, source=source, started_at=started_at, request=request)


def _apply(plan, rows, *, by, source, started_at, request, history_source="import"):
    """Apply a valid plan (apply_import), and record and log the outcome, a refusal included."""
    try:
        run = apply_import(plan, by=by, source=source, started_at=started_at, history_source=history_source)
    except PrivilegedAccountsChanged as refused:
        run = _record_run(ImportRun.Outcome.REJECTED, by=by, source=source, started_at=started_at,
                          counts={"rows": len(rows)}, errors=refused.errors)
        _log_privileged_refusal(refused.errors, rows, by=by, request=request, run=run, dry_run=False)
        return ImportResult(run=run, plan=None, errors=refused.errors)
    except DatabaseError:
        # E.g. another import or an admin created the same account in the meantime. The
        # transaction rolled back, so nothing changed; say so rather than answer with a 500.
        logger.exception("Employee import of %s failed while applying; rolled back", source)
        errors = [RowError(None, "", _("The database refused the changes, so nothing was changed. "
                                       "Please try again; if it keeps failing, contact the administrators."))]
        run = _record_run(ImportRun.Outcome.REJECTED, by=by, source=source, started_at=started_at,
                          counts={"rows": len(rows)}, errors=errors)
        return ImportResult(run=run, plan=None, errors=errors)
    counts = plan.counts()
    security_event("employees_imported", request=request, user=by, outcome="success", run=run.pk,
                   source=run.source, changed_fields=plan.changed_fields(), created=counts["created"],
                   updated=counts["updated"], unchanged=counts["unchanged"], leavers=counts["leavers"],
                   linked_accounts=plan.linked_accounts())
    return ImportResult(run=run, plan=plan, errors=[])


# Rows one at a time: provisioning ---------------------------------------------------------------
#
# An identity provider (scim/) sends one employee per request. Each request is applied as an import of
# that one row, through the same validation, plan and apply as a file, so that there is one rule for
# addresses, privileged accounts, managers and leavers: recorded as an ImportRun (source "scim:<token
# key>") with its ImportChange, audit event and security log line. Two rules are stricter than a file's,
# because nobody at HR looked at the request first: a provisioning client changes no privileged
# account at all (a file may still update such an employee's department or dates, and deactivate
# them), and a new employee's number must be new (a file would update that employee instead).


class Provisioning(NamedTuple):
    """How a provisioning client's rows are checked beyond a file's rules."""

    creating: bool  # every row is a new employee: a number on record is taken


def _provisioning_errors(rows, existing, provisioning):
    errors = []
    for row in rows:
        current = existing.employees.get(row.employee_number)
        if current is not None and provisioning.creating:
            errors.append(RowError(row.number, "employee_number", _(
                "There is an employee %(number)s already.") % {"number": row.employee_number}, kind="taken"))
        elif current is not None and existing.is_privileged(current.user_id):
            errors.append(RowError(row.number, "employee_number", _(
                "Employee %(number)s has a privileged account (staff, administrator, HR, approver or auditor): "
                "provisioning does not change it. Change privileged accounts in the admin."
            ) % {"number": row.employee_number}, privileged_user=current.user_id))
    return errors


def apply_rows(rows, *, by, source, provisioning, request=None):
    """Validate, plan and apply rows from a provisioning client as an import of those rows, loading only
    what they concern (load_concerned), all under the import lock so that what was checked is what is
    written. An ImportResult: applied (its run), refused (a rejected run and the errors), or unchanged
    (no run: nothing to record)."""
    require_permission(by, "guidelines.manage")
    started_at = timezone.now()
    with transaction.atomic():
        _lock_imports()
        existing = load_concerned(rows)
        errors = _provisioning_errors(rows, existing, provisioning) or validate(rows, existing=existing)
        if not errors:
            plan = plan_import(rows, existing=existing)
            if not plan.creates and not plan.updates:
                return ImportResult(run=None, plan=plan, errors=[])
            return _apply(plan, rows, by=by, source=source, started_at=started_at, request=request,
                          history_source="scim")
    run = _record_run(ImportRun.Outcome.REJECTED, by=by, source=source, started_at=started_at,
                      counts={"rows": len(rows)}, errors=errors)
    _log_privileged_refusal(errors, rows, by=by, request=request, run=run, dry_run=False)
    return ImportResult(run=run, plan=None, errors=errors)


def last_applied_import():
    return ImportRun.objects.filter(outcome=ImportRun.Outcome.APPLIED).defer("errors").first()


# Apply the file a dry run checked ---------------------------------------------------------------
#
# A clean dry run by an HR user keeps the file in the cache (shared by the web processes) under its run's
# id, and gives a reference signed with the SECRET_KEY: the run, the file's SHA-256, the digest of the
# plan the dry run showed, and who ran it. "Apply this file" sends the reference back; the file is
# applied only if the reference is genuine and recent, names a dry run by the same person, the kept
# file still has that SHA-256, and planning it again against the data as it is now (under the import
# lock, in the transaction that applies it) gives the same digest. Anything else changes nothing.

CHECKED_FILE_MAX_AGE = 2 * 60 * 60  # seconds a dry run can be applied for
_APPLY_SALT = "guidelines.imports.apply_checked_file"


class ApplyRefused(Exception):
    """The checked file cannot be applied; the message says why and what to do."""

    def __init__(self, message, *, stale=False):
        super().__init__(message)
        self.message = message
        self.stale = stale  # the data changed since the dry run (rather than a bad or expired reference)


def _checked_key(run_pk):
    return f"guidelines:import-checked:{run_pk}"


def keep_checked_file(file_bytes, *, run, plan):
    """Keep a clean dry run's file for applying it; the signed reference to send back (apply_checked_file)."""
    shared_cache.set(_checked_key(run.pk), bytes(file_bytes), CHECKED_FILE_MAX_AGE)
    return signing.dumps({"run": run.pk, "sha256": hashlib.sha256(file_bytes).hexdigest(), "plan": plan.digest(),
                          "by": run.by_id}, salt=_APPLY_SALT, compress=True)


def _checked(token, by):
    """(dry run, file bytes, plan digest) of a genuine reference, or ApplyRefused."""
    invalid = ApplyRefused(_("This dry run cannot be applied: its reference is not valid or is more than two "
                             "hours old. Upload the file again for a new dry run."))
    try:
        checked = signing.loads(token, salt=_APPLY_SALT, max_age=CHECKED_FILE_MAX_AGE)
        run_pk, sha256, digest, by_pk = checked["run"], checked["sha256"], checked["plan"], checked["by"]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise invalid from None
    run = ImportRun.objects.filter(pk=run_pk, outcome=ImportRun.Outcome.DRY_RUN).defer("errors").first()
    if run is None or by_pk != by.pk or run.by_id != by.pk:
        raise invalid
    file_bytes = shared_cache.get(_checked_key(run.pk))
    if file_bytes is None:
        raise ApplyRefused(_("The file of this dry run is no longer kept: it was applied already, or the dry run "
                             "is more than two hours old. Upload the file again for a new dry run."))
    if hashlib.sha256(file_bytes).hexdigest() != sha256:
        raise ApplyRefused(_("The kept file does not match the file the dry run checked, so nothing was "
                             "changed. Upload the file again for a new dry run."))
    return run, file_bytes, digest


def apply_checked_file(token, *, by, request=None):
    """Apply exactly the file a dry run checked, if what it would change is still what the dry run showed.
    An ImportResult (applied, or rejected as an import is), or ApplyRefused when nothing was tried."""
    require_permission(by, "guidelines.manage")
    dry_run, file_bytes, digest = _checked(token, by)
    started_at = timezone.now()
    stale = ApplyRefused(_("The employee data changed after the dry run, so applying the file now would not do "
                           "what the dry run showed. Nothing was changed. Upload the file again for a new dry "
                           "run."), stale=True)
    try:
        with transaction.atomic():
            _lock_imports()  # no other import applies between planning again and applying
            try:
                rows = parse_csv(file_bytes)
            except ImportRejected:
                raise stale from None
            existing = load_existing()
            if validate(rows, existing=existing):
                raise stale
            plan = plan_import(rows, existing=existing)
            if plan.digest() != digest:
                raise stale
            result = _apply(plan, rows, by=by, source=dry_run.source, started_at=started_at, request=request)
    except ApplyRefused as refused:
        # Recorded like any refused import, so the history of runs shows the attempt.
        _record_run(ImportRun.Outcome.REJECTED, by=by, source=dry_run.source, started_at=started_at,
                    counts={"rows": dry_run.rows}, errors=[RowError(None, "", refused.message)])
        raise
    if not result.errors:
        shared_cache.delete(_checked_key(dry_run.pk))  # applied once: the reference cannot apply it again
    return result
