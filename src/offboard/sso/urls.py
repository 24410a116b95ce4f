"""The single sign-on routes, spliced into the staff site's (`web:` names)."""

from django.urls import path

from offboard.sso import views

urlpatterns = [
    path("login/sso/", views.sso_login, name="sso-login"),
    path("login/sso/callback/", views.callback, name="sso-callback"),
    path("login/sso/<slug:org_slug>/", views.sso_login_org, name="sso-login-org"),
]
