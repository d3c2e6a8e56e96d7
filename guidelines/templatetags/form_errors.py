"""The page's form when it came back with errors (the GOV.UK error pattern in base.html)."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def form_with_errors(context):
    """The context's `form` if it has errors, else None. Asked here rather than with {% if form.errors %}
    in the layout: on a page without a form, the template engine logs the missing variable with the
    whole context (a CSRF token among it) at DEBUG level."""
    form = context.get("form")
    return form if getattr(form, "errors", None) else None
