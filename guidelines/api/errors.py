"""The API's errors: DRF's for its own exceptions, plus a service's ValidationError as a 400 with
its messages (the pages show the same messages on their forms). Refusals are in the security log."""

from django.core.exceptions import ValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler

from ..security import security_event


def handle(error, context):
    if isinstance(error, ValidationError):
        error = exceptions.ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)
    response = exception_handler(error, context)
    if response is not None and response.status_code == 401:
        request = context["request"]._request
        if "denied" not in getattr(request, "_security_outcomes", ()):
            security_event("api_token_refused", request=request, outcome="denied", reason="no token")
    return response
