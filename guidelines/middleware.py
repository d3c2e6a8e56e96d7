from django.conf import settings
from django.utils import translation

from .services import employee_for


class EmployeeMiddleware:
    """Puts the signed-in user's employee record on the request and speaks their language.

    An explicit choice (the language cookie set by the language switch) wins over the
    language in the HR data.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.employee = None
        if request.user.is_authenticated:
            request.employee = employee_for(request.user)
            chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
            if request.employee and chosen not in dict(settings.LANGUAGES):
                translation.activate(request.employee.language)
                request.LANGUAGE_CODE = request.employee.language
        return self.get_response(request)
