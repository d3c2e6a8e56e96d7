"""Who may do what. Every view states its role with one of these decorators."""

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# Privileged accounts: staff, superusers, and whoever holds a role of the app through a role group or a
# role permission. An HR import never links, renames or re-addresses them (imports.py), and a sign-in
# with an identity provider never reaches them by e-mail address alone (accounts.py).
ROLE_GROUPS = ("HR", "Approvers", "Auditors")
ROLE_PERMISSIONS = ("manage", "approve", "audit")  # of the guidelines app
# The role groups as readers see them, in their language. The names in the database stay as above
# (this module finds the groups by them).
ROLE_GROUP_LABELS = {"HR": gettext_lazy("HR"), "Approvers": gettext_lazy("Approvers"),
                     "Auditors": gettext_lazy("Auditors")}


def group_label(name):
    """A group's name for readers: a role group's in the reader's language, any other as it was named."""
    return str(ROLE_GROUP_LABELS.get(name, name))


def privileged_users():
    """The privileged accounts, as a queryset of users."""
    User = get_user_model()
    role_permissions = Permission.objects.filter(content_type__app_label="guidelines", codename__in=ROLE_PERMISSIONS)
    in_role = User.groups.through.objects.filter(
        Q(group__name__in=ROLE_GROUPS) | Q(group__permissions__in=role_permissions)
    ).values("user_id")
    granted = User.user_permissions.through.objects.filter(permission__in=role_permissions).values("user_id")
    return User.objects.filter(Q(is_staff=True) | Q(is_superuser=True) | Q(pk__in=in_role) | Q(pk__in=granted))


def is_privileged(user):
    """privileged_users() for the signed-in user, without a query for an employee (accounts.employee_for
    primes the permission cache). Membership of a role group counts through the role permissions the
    group holds."""
    return user.is_staff or user.is_superuser or any(
        user.has_perm(f"guidelines.{codename}") for codename in ROLE_PERMISSIONS)


def employee_required(view):
    """The signed-in user must have an employee record."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.employee is None:
            raise PermissionDenied(_("Your account is not linked to an employee record. Please contact HR."))
        return view(request, *args, **kwargs)

    return wrapper


def permission_required(perm):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.has_perm(perm):
                raise PermissionDenied(_("You do not have access to this page."))
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


hr_required = permission_required("guidelines.manage")
approver_required = permission_required("guidelines.approve")
auditor_required = permission_required("guidelines.audit")


# What an approver holds in the admin: reading versions (and its approve action). Their work is in the
# approvals inbox, where the text is in view and an approval is confirmed.
APPROVER_ADMIN_PERMISSIONS = {"guidelines.view_version", "guidelines.view_versiontext"}
ADMIN_ACTIONS = ("add", "change", "delete", "view")


def uses_admin(user):
    """Staff with work in the admin: a superuser, or someone holding a model permission there beyond an
    approver's. The menu offers the admin to them only."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or any(
        perm not in APPROVER_ADMIN_PERMISSIONS and perm.partition(".")[2].partition("_")[0] in ADMIN_ACTIONS
        for perm in user.get_all_permissions())


def is_hr_or_auditor(user):
    """HR (guidelines.manage) and auditors (guidelines.audit) see everyone's evidence."""
    return user.has_perm("guidelines.manage") or user.has_perm("guidelines.audit")


def dashboard_required(view):
    """HR and auditors see the dashboards."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_hr_or_auditor(request.user):
            raise PermissionDenied(_("The dashboards are for HR and auditors."))
        return view(request, *args, **kwargs)

    return wrapper


def evidence_reader_required(view):
    """HR and auditors: the pages about one employee and the employee search."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_hr_or_auditor(request.user):
            raise PermissionDenied(_("Only HR and auditors may see everyone's evidence."))
        return view(request, *args, **kwargs)

    return wrapper


def manager_required(view):
    """The signed-in employee manages at least one other employee."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.employee is None or not request.employee.manages:
            raise PermissionDenied(_("This page is for managers: nobody reports to you."))
        return view(request, *args, **kwargs)

    return wrapper


# The service layer asks the same questions, whatever calls it (view, admin action, command) ---------

PERMISSION_MESSAGES = {
    "guidelines.manage": gettext_lazy("You do not have permission to manage guidelines."),
    "guidelines.approve": gettext_lazy("You do not have permission to approve versions."),
}


def require_permission(user, perm):
    """Raise PermissionDenied unless `user` holds `perm` (nobody acts anonymously on evidence)."""
    if user is None or not user.is_active or not user.has_perm(perm):
        raise PermissionDenied(PERMISSION_MESSAGES.get(perm, gettext_lazy("You do not have access to this page.")))


def require_evidence_reader(user):
    """HR and auditors read everyone's evidence (dashboards, auditor packs, any certificate)."""
    if user is None or not user.is_active or not is_hr_or_auditor(user):
        raise PermissionDenied(gettext_lazy("Only HR and auditors may see everyone's evidence."))


def may_read_acknowledgement(user, acknowledgement):
    """The employee who acknowledged, HR and auditors."""
    if user is None or not user.is_active:
        return False
    return acknowledgement.employee.user_id == user.pk or is_hr_or_auditor(user)


def require_acknowledgement_reader(user, acknowledgement):
    if not may_read_acknowledgement(user, acknowledgement):
        raise PermissionDenied(gettext_lazy("You can only download certificates of your own acknowledgements."))


def status_reach(user):
    """Whose status `user` may read, as the pages allow it: everyone's (HR and auditors: None), else
    their direct reports' (a manager, as on the team page, as a queryset). Anyone else: PermissionDenied."""
    from .models import Employee

    if user is not None and user.is_active and is_hr_or_auditor(user):
        return None
    reports = Employee.objects.filter(manager__user=user) if user is not None and user.is_active else None
    if reports is None or not reports.exists():
        raise PermissionDenied(gettext_lazy("Only HR, auditors and managers may read status."))
    return reports
