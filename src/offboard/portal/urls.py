from django.urls import path, re_path

from offboard.portal import views

app_name = "portal"

urlpatterns = [
    path("<str:token>/", views.case_page, name="case"),
    re_path(r"^(?P<token>[^/]+)$", views.case_page),  # the link copied without its slash
    path("<str:token>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<str:token>/dispute/", views.dispute, name="dispute"),
    path("<str:token>/files/<str:sha256>", views.download, name="file"),
    # Anything else under /portal/ is answered like an invalid link.
    re_path(r"^.*$", views.not_found),
]
