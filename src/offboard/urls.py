"""The whole site: the REST API, the client portal and the staff pages. No Django admin
(decision 0011): tests/web/test_isolation.py checks this list."""

from django.urls import include, path

from offboard import health, metrics
from offboard.api import api

urlpatterns = [
    # For load balancers and orchestrators: no login, no session, no secret (docs/deploy.md).
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),  # Prometheus; token: docs/deploy.md
    path("api/v1/", api.urls),
    path("portal/", include("offboard.portal.urls")),
    path("calendar/", include("offboard.calendar.urls")),
    path("reminders/", include("offboard.reminders.urls")),
    path("", include("offboard.web.urls")),
]
