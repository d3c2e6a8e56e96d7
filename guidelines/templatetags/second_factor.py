"""What the second factor's pages may offer, asked of the rule itself (accounts.IntranetMFAAdapter)."""

from allauth.mfa.adapter import get_adapter
from django import template

register = template.Library()


@register.filter
def removable(authenticator):
    """Whether its owner may remove or switch off this authenticator (an Authenticator or allauth's
    wrapper of one)."""
    return get_adapter().can_delete_authenticator(getattr(authenticator, "instance", authenticator))

