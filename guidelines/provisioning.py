"""Provisioning from an identity provider (SCIM 2.0, scim/): what it may change and how.

The identity provider (Microsoft Entra ID) creates, updates and deactivates employees and keeps the
members of audience groups. Its token acts for an HR service account: every function here asks for
guidelines.manage itself, whatever calls it.

Employees follow the HR import's rules, because each write *is* an import of one row
(imports.apply_rows): the address is the login, an address another employee has is refused, a
privileged account is never touched, history and ImportChange evidence are recorded with the run
("scim:<token key>"). What SCIM adds:

- The SCIM id of an employee is its primary key; the employee number is HR's key and never changes
  (the enterprise extension's employeeNumber, or externalId: they must agree).
- Deactivating (active false, or DELETE) is a leaver as the import has one: the end date becomes
  today (unless an earlier one is set) and the account is deactivated. Nothing is ever deleted:
  acknowledgements are evidence.
- Reactivating is left to the admin, as in the import: active true on a deactivated account
  changes nothing (the rest of the request is applied); the answer keeps saying active false.
- A new employee starts today (SCIM has no start date), so a joiner is not overdue on day one.
- Audience groups are Django groups that are no role group and hold no permission: a provider
  may create, rename, fill and delete those, never a group that grants access, and never with a
  privileged member. A group that a guideline's audience names is not deleted.
"""

from dataclasses import dataclass, replace

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import imports
from .access import ROLE_GROUPS, privileged_users, require_permission
from .models import LANGUAGES, AuditEvent, Employee, Guideline
from .organisation import recorded
from .security import security_event
from .services import record_audit_event

PROVISIONING_PERMISSION = "guidelines.manage"


class ProvisioningError(Exception):
    """A refusal with its HTTP status and SCIM error type (RFC 7644 §3.12): what the client is told."""

    def __init__(self, status, detail, scim_type=None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, str(detail), scim_type


def require_provisioner(user):
    """HR's permission: provisioning changes who must acknowledge what."""
    require_permission(user, PROVISIONING_PERMISSION)


def key_of(scim_id):
    """The primary key a SCIM id names (ids are primary keys as text), or None: ASCII digits only, as
    int() would also read other scripts' digits, and within a bigint."""
    scim_id = str(scim_id)
    return int(scim_id) if scim_id.isascii() and scim_id.isdigit() and len(scim_id) < 19 else None


def source_of(token):
    """The ImportRun source and audit detail naming the client: its token's public key."""
    return f"scim:{token.key_id}"


# Employees ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """An employee as provisioning sees it: what SCIM may set, nothing else."""

    employee_number: str
    email: str
    first_name: str = ""
    last_name: str = ""
    active: bool = True
    department: str = ""
    manager_id: str = ""  # the manager's SCIM id (the Employee's pk), "" for none
    language: str = "nl"

    def but(self, **changes):
        return replace(self, **changes)


def provisioned_employees():
    """Employees as provisioning lists and reads them (privileged ones included: reading is no change)."""
    return Employee.objects.select_related("user", "department", "manager").order_by("pk")


def is_active(employee, today=None):
    """Active for provisioning: the account is active and the employee has not left."""
    today = today or timezone.localdate()
    return employee.user.is_active and (employee.end_date is None or employee.end_date > today)


def person_of(employee):
    user = employee.user
    return Person(employee_number=employee.employee_number, email=user.email or user.username,
                  first_name=user.first_name, last_name=user.last_name, active=is_active(employee),
                  department=employee.department.name if employee.department_id else "",
                  manager_id=str(employee.manager_id or ""), language=employee.language)


# Where a problem the import found is reported, in SCIM's names for the attributes.
ATTRIBUTE_OF_COLUMN = {
    "employee_number": "employeeNumber", "email": "userName", "first_name": "name.givenName",
    "last_name": "name.familyName", "department": "department", "manager_employee_number": "manager",
    "end_date": "active", "start_date": "active", "language": "preferredLanguage",
}


def language_of(value):
    """nl or en from a language tag (nl, nl-NL, en_GB); anything else is refused, as the import refuses it."""
    primary = str(value).strip().replace("_", "-").partition("-")[0].lower()
    if primary not in LANGUAGES:
        raise ProvisioningError(400, _("preferredLanguage: the language must be Dutch (nl) or English (en), "
                                       "not “%(value)s”.") % {"value": value}, "invalidValue")
    return primary


def _manager_number(person):
    if not person.manager_id:
        return ""
    key = key_of(person.manager_id)
    number = None if key is None else Employee.objects.filter(pk=key).values_list("employee_number", flat=True).first()
    if number is None:
        raise ProvisioningError(400, _("manager: there is no user with id “%(id)s”.") % {"id": person.manager_id},
                                "invalidValue")
    return number


def _row(person, employee, today):
    """The import row that gives `person`; `employee` is who they are now (None: new, starting today)."""
    start = employee.start_date if employee else today
    end = employee.end_date if employee else None
    if not person.active and (end is None or end > today):
        end = today  # a leaver, as of today
    return imports.Row(number=1, width=len(imports.COLUMNS), employee_number=person.employee_number.strip(),
                       email=person.email.strip().lower(), first_name=person.first_name.strip(),
                       last_name=person.last_name.strip(), department=person.department.strip(),
                       manager_employee_number=_manager_number(person),
                       start_date=start.isoformat() if start else "", end_date=end.isoformat() if end else "",
                       language=person.language)


def _refusal(errors):
    """The import's errors as one SCIM error: a privileged account is 403, a taken number or address 409."""
    detail = " ".join(f"{ATTRIBUTE_OF_COLUMN.get(error.column, error.column) or 'user'}: {error.message}"
                      for error in errors)
    if any(error.privileged_user is not None for error in errors):
        return ProvisioningError(403, detail)
    if any(error.kind == "taken" for error in errors):
        return ProvisioningError(409, detail, "uniqueness")
    if any(error.row is None for error in errors):  # the database refused: another change came first
        return ProvisioningError(409, detail)
    return ProvisioningError(400, detail, "invalidValue")


def _apply(person, employee, *, by, token, request):
    """Apply `person` as a one-row import; the ImportResult (refused or not: the caller raises after its
    transaction, so that a refused run stays recorded)."""
    row = _row(person, employee, timezone.localdate())
    return imports.apply_rows([row], by=by, source=source_of(token), request=request,
                              provisioning=imports.Provisioning(creating=employee is None))


def _applied(result, employee_number):
    if result.errors:
        raise _refusal(result.errors)
    return provisioned_employees().get(employee_number=employee_number)


def create_employee(person, *, by, token, request=None):
    """A new employee (and account, or the unlinked account with that address) from the provider."""
    require_provisioner(by)
    if not person.employee_number.strip():
        raise ProvisioningError(400, _("employeeNumber: an employee number is required (the enterprise "
                                       "extension's employeeNumber, or externalId)."), "invalidValue")
    return _applied(_apply(person, None, by=by, token=token, request=request), person.employee_number.strip())


def update_employee(employee, change, *, by, token, request=None):
    """Change an employee as `change` says (a PUT or PATCH): a function from who they are now to the Person
    wanted. It is called under the import lock, on the employee as read there, so that two requests for
    the same employee cannot undo each other's change. Then the same rules as a row of the import."""
    require_provisioner(by)
    with imports.import_lock():
        employee = provisioned_employees().get(pk=employee.pk)
        person = change(person_of(employee))
        if person.employee_number.strip() != employee.employee_number:
            raise ProvisioningError(400, _("employeeNumber: the employee number is HR's key and cannot change "
                                           "(this user has %(number)s).") % {"number": employee.employee_number},
                                    "mutability")
        result = _apply(person, employee, by=by, token=token, request=request)
    return _applied(result, employee.employee_number)


def deactivate_employee(employee, *, by, token, request=None):
    """DELETE: a leaver as of today. The record stays: acknowledgements are evidence."""
    return update_employee(employee, lambda person: person.but(active=False), by=by, token=token, request=request)


# Audience groups --------------------------------------------------------------------------------

GROUP_NAME_LENGTH = Group._meta.get_field("name").max_length
ROLE_GROUP_REFUSAL = gettext_lazy("“%(name)s” is a role group or holds permissions: it grants access, so it is "
                                  "managed in the admin, never by provisioning.")


def audience_groups():
    """The groups provisioning may touch: no role group, no permission (so membership grants nothing)."""
    return Group.objects.exclude(name__in=ROLE_GROUPS).filter(permissions__isnull=True).order_by("pk")


def _is_role_group_name(name):
    return name.casefold() in {role.casefold() for role in ROLE_GROUPS}


def _refuse_role_group(group_or_name, *, by, request, operation):
    name = getattr(group_or_name, "name", group_or_name)
    security_event("scim_role_group_refused", request=request, user=by, outcome="denied", operation=operation,
                   group=getattr(group_or_name, "pk", None))
    raise ProvisioningError(403, ROLE_GROUP_REFUSAL % {"name": name})


def provisioned_group(pk, *, by, request=None, operation="read"):
    """An audience group by its SCIM id; a role group is refused (403), an unknown id is None."""
    group = Group.objects.filter(pk=pk).first()
    if group is not None and not audience_groups().filter(pk=group.pk).exists():
        _refuse_role_group(group, by=by, request=request, operation=operation)
    return group


def _check_name(name, *, by, request, group=None):
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ProvisioningError(400, _("displayName: a group needs a name."), "invalidValue")
    if len(name) > GROUP_NAME_LENGTH or "\x00" in name:
        raise ProvisioningError(400, _("displayName: at most %(limit)d characters, and no NUL characters.")
                                % {"limit": GROUP_NAME_LENGTH}, "invalidValue")
    if _is_role_group_name(name):
        _refuse_role_group(name, by=by, request=request, operation="name")
    if Group.objects.filter(name=name).exclude(pk=getattr(group, "pk", None)).exists():
        raise ProvisioningError(409, _("displayName: there is a group “%(name)s” already.") % {"name": name},
                                "uniqueness")
    return name


def _members(ids):
    """{user id: employee number} of the employees with these SCIM ids; an unknown id is refused."""
    keys = {key for key in map(key_of, ids) if key is not None}
    rows = Employee.objects.filter(pk__in=keys).values_list("pk", "user_id", "employee_number")
    found = {str(pk): (user_id, number) for pk, user_id, number in rows}
    unknown = sorted(set(ids) - found.keys())
    if unknown:
        raise ProvisioningError(400, _("members: there is no user with id %(ids)s.") % {"ids": ", ".join(unknown)},
                                "invalidValue")
    return dict(found.values())


def _refuse_privileged_members(user_ids, *, by, token, request):
    """A privileged account's groups are changed in the admin: a request that would add or remove one is
    refused as a whole, and logged as the import logs its refusals."""
    privileged = sorted(privileged_users().filter(pk__in=user_ids).values_list("pk", flat=True))
    if privileged:
        security_event("import_privileged_account_refused", request=request, user=by, outcome="denied",
                       source=source_of(token), accounts=privileged)
        raise ProvisioningError(403, _("members: a privileged account (staff, administrator, HR, approver or "
                                       "auditor) is among them; its groups are changed in the admin."))


@dataclass(frozen=True)
class GroupChange:
    """What a request does to a group: a new name, members to add and remove, or all members at once."""

    name: str | None = None
    add: tuple = ()
    remove: tuple = ()
    members: tuple | None = None  # replaces every member (PUT, or PATCH replace of members)


def _write_group(group, change, *, by, token, request, operation):
    """Apply `change` to `group` (None: create it) in one transaction, with history and an audit event."""
    require_provisioner(by)
    source = source_of(token)
    with transaction.atomic():
        if group is not None:
            group = Group.objects.select_for_update().get(pk=group.pk)
            if not audience_groups().filter(pk=group.pk).exists():  # it became a role group meanwhile
                _refuse_role_group(group, by=by, request=request, operation=operation)
        name = _check_name(change.name, by=by, request=request, group=group) if change.name is not None else None
        wanted = _members([*change.add, *(change.members or ())])
        leaving = _members(list(change.remove))
        with recorded(source="scim", by=by):
            if group is None:
                group = Group.objects.create(name=name)
                renamed = None
            else:
                renamed = [group.name, name] if name is not None and name != group.name else None
                if renamed:
                    group.name = name
                    group.save(update_fields=["name"])
            current = dict(Employee.objects.filter(user__groups=group).values_list("user_id", "employee_number"))
            if change.members is not None:
                leaving = {user: number for user, number in current.items() if user not in wanted}
            added = {user: number for user, number in wanted.items() if user not in current}
            removed = {user: number for user, number in leaving.items() if user in current and user not in added}
            _refuse_privileged_members([*added, *removed], by=by, token=token, request=request)
            group.user_set.add(*added)
            group.user_set.remove(*removed)
        if operation == "created" or renamed or added or removed:
            record_audit_event(action=AuditEvent.Action.ROLES_CHANGED, actor=by, source=source, operation=operation,
                               group=group.name, group_id=group.pk, renamed=renamed,
                               added=sorted(added.values()), removed=sorted(removed.values()))
    return group


def create_group(change, *, by, token, request=None):
    if change.name is None:
        raise ProvisioningError(400, _("displayName: a group needs a name."), "invalidValue")
    return _write_group(None, change, by=by, token=token, request=request, operation="created")


def update_group(group, change, *, by, token, request=None):
    return _write_group(group, change, by=by, token=token, request=request, operation="changed")


def delete_group(group, *, by, token, request=None):
    """Only a group that no guideline's audience names: deleting it would change who must acknowledge."""
    require_provisioner(by)
    with transaction.atomic():
        group = Group.objects.select_for_update().get(pk=group.pk)
        if not audience_groups().filter(pk=group.pk).exists():
            _refuse_role_group(group, by=by, request=request, operation="delete")
        used_by = sorted(Guideline.objects.filter(audience_groups=group).values_list("slug", flat=True))
        if used_by:
            raise ProvisioningError(409, _("The group “%(name)s” is in the audience of %(guidelines)s; HR removes "
                                           "it there first, so it is not deleted.")
                                    % {"name": group.name, "guidelines": ", ".join(used_by)})
        members = dict(Employee.objects.filter(user__groups=group).values_list("user_id", "employee_number"))
        _refuse_privileged_members(list(group.user_set.values_list("pk", flat=True)), by=by, token=token,
                                   request=request)
        record_audit_event(action=AuditEvent.Action.ROLES_CHANGED, actor=by, source=source_of(token),
                           operation="deleted", group=group.name, group_id=group.pk, renamed=None, added=[],
                           removed=sorted(members.values()))
        with recorded(source="scim", by=by):
            group.delete()
