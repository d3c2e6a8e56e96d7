"""Who may do what. Every view states its role with one of these decorators."""

from functools import wraps

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy


class IntranetAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # Accounts come from the HR import; nobody signs themselves up.
        return False


class IntranetSocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin):
        return False


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
auditor_required = permission_required("guidelines.audit")


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
    "guidelines.manage": _lazy("You do not have permission to manage guidelines."),
    "guidelines.approve": _lazy("You do not have permission to approve versions."),
}


def require_permission(user, perm):
    """Raise PermissionDenied unless `user` holds `perm` (nobody acts anonymously on evidence)."""
    if user is None or not user.is_active or not user.has_perm(perm):
        raise PermissionDenied(PERMISSION_MESSAGES.get(perm, _lazy("You do not have access to this page.")))
