from django.contrib import admin
from django.urls import include, path

from offboard.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("portal/", include("offboard.portal.urls")),
    path("", include("offboard.web.urls")),
]
