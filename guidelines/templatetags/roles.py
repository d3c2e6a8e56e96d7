"""Which parts of the menu a user's roles lead to (guidelines.access decides)."""

from django import template

from ..access import uses_admin as _uses_admin

register = template.Library()


@register.filter
def uses_admin(user):
    return _uses_admin(user)


APPROVER_PAGES = ("approvals", "hr_draft_approve", "hr_draft_send_back")


@register.simple_tag(takes_context=True)
def in_approvals(context):
    """Whether the page belongs to the approver's menu item: the inbox and the decisions, and a draft's page
    when the reader is no HR (HR reaches drafts from "Manage guidelines")."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is None:
        return False
    return match.url_name in APPROVER_PAGES or (
        match.url_name == "hr_draft" and not request.user.has_perm("guidelines.manage"))
