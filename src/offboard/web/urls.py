from django.contrib.auth import views as auth_views
from django.urls import path

from offboard.web import views

app_name = "web"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.case_list, name="case-list"),
    path("cases/<str:ref>/", views.case_detail, name="case-detail"),
    path("cases/<str:ref>/evidence-pack", views.evidence_pack, name="evidence-pack"),
]
