"""URLs for the benchmark run: the real site plus one trivial page, the floor."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path


@login_required
def floor(request):
    """The cheapest login-required page: the full middleware stack and nothing else."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/floor/", floor),
    path("", include("intranet.urls")),
]
