"""URLs for the benchmark run: the real site plus one trivial page, the floor."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template import engines
from django.urls import include, path


@login_required
def floor(request):
    """The cheapest login-required page: the full middleware stack and nothing else."""
    return HttpResponse("ok", content_type="text/plain")


EMPTY_PAGE = engines["django"].from_string('{% extends "base.html" %}{% block content %}<p>ok</p>{% endblock %}')


@login_required
def floor_template(request):
    """A login-required page in the site's layout with no content: what the base template costs."""
    return HttpResponse(EMPTY_PAGE.render({}, request))


urlpatterns = [
    path("bench/floor/", floor),
    path("bench/floor-template/", floor_template),
    path("", include("intranet.urls")),
]
