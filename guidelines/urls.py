from django.urls import path

from .views import employee

app_name = "guidelines"

urlpatterns = [
    path("", employee.home, name="home"),
    path("my/acknowledgements/", employee.history, name="history"),
    path("my/acknowledgements/<int:pk>/", employee.receipt, name="receipt"),
    path("guidelines/<slug:slug>/", employee.guideline_detail, name="detail"),
    path("guidelines/<slug:slug>/versions/", employee.version_list, name="versions"),
    path("guidelines/<slug:slug>/acknowledge/", employee.acknowledge, name="acknowledge"),
]
