from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import path

from offboard.mfa import urls as mfa_urls
from offboard.mfa.views import SignInView
from offboard.sso import urls as sso_urls
from offboard.web import views, workspace, workspace_portal
from offboard.web.pages import (
    case_connectors,
    client_import,
    clients,
    dashboard,
    opening,
    playbooks,
    reminders_card,
    tokens_card,
)
from offboard.web.pages import connections as connection_pages
from offboard.web.pages import inbound as inbound_pages
from offboard.web.pages import password_reset as password_reset_pages
from offboard.web.pages import security as security_pages
from offboard.web.pages import settings as settings_pages
from offboard.web.pages import sso as sso_pages
from offboard.web.pages import webhooks as webhook_pages

app_name = "web"

urlpatterns = [
    # The password, then a second factor for members who enrolled one (offboard.mfa).
    path("login/", SignInView.as_view(), name="login"),
    *mfa_urls.urlpatterns,
    # Single sign-on through the organization's OpenID Connect provider (offboard.sso).
    *sso_urls.urlpatterns,
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", password_reset_pages.request_reset, name="password-reset"),
    path(
        "password-reset/<str:token>/",
        password_reset_pages.set_password,
        name="password-reset-confirm",
    ),
    path("", dashboard.dashboard, name="dashboard"),
    path("cases/", views.case_list, name="case-list"),
    path("cases/new/", opening.open_case_page, name="open-case"),
    path("cases/<str:ref>/", views.case_detail, name="case-detail"),
    path("cases/<str:ref>/evidence-pack", views.evidence_pack, name="evidence-pack"),
    path(
        "cases/<str:ref>/connectors/discover/",
        case_connectors.discover,
        name="connector-discover",
    ),
    path("cases/<str:ref>/connectors/revoke/", case_connectors.revoke, name="connector-revoke"),
    path(
        "cases/<str:ref>/connectors/runs/<str:run_id>/",
        case_connectors.run_status,
        name="connector-run",
    ),
    path(
        "cases/<str:ref>/connectors/runs/<str:run_id>/<str:decision>",
        case_connectors.decide,
        name="connector-run-decide",
    ),
    path("cases/<str:ref>/files/<str:sha256>", views.evidence_file, name="case-file"),
    path("cases/<str:ref>/certificate.pdf", views.closure_certificate, name="case-certificate"),
    *workspace.urlpatterns,
    *workspace_portal.urlpatterns,
    # Clients
    path("clients/", clients.client_list, name="client-list"),
    path("clients/new/", clients.client_create, name="client-create"),
    path("clients/import/", client_import.client_import, name="client-import"),
    path(
        "clients/import/template.csv",
        client_import.client_import_template,
        name="client-import-template",
    ),
    path("clients/<int:client_id>/", clients.client_detail, name="client-detail"),
    path("clients/<int:client_id>/edit/", clients.client_edit, name="client-edit"),
    path("clients/<int:client_id>/contacts/new/", clients.contact_create, name="contact-create"),
    path(
        "clients/<int:client_id>/contacts/<int:contact_id>/edit/",
        clients.contact_edit,
        name="contact-edit",
    ),
    path("clients/<int:client_id>/contracts/new/", clients.contract_create, name="contract-create"),
    path(
        "clients/<int:client_id>/contracts/<int:contract_id>/documents/",
        clients.contract_document_upload,
        name="contract-document-upload",
    ),
    path(
        "clients/<int:client_id>/contracts/<int:contract_id>/documents/<str:sha256>",
        clients.contract_document,
        name="contract-document",
    ),
    # Playbooks
    path("playbooks/", playbooks.playbook_list, name="playbook-list"),
    path("playbooks/upload/", playbooks.playbook_upload, name="playbook-upload"),
    path("playbooks/<slug:slug>/", playbooks.playbook_detail, name="playbook-detail"),
    path(
        "playbooks/<slug:slug>/versions/<int:version>/diff/",
        playbooks.playbook_diff,
        name="playbook-diff",
    ),
    # Settings
    path("settings/", settings_pages.settings_page, name="settings"),
    path(
        "settings/members/<int:user_id>/role",
        settings_pages.change_member_role,
        name="member-role",
    ),
    path("settings/members/", settings_pages.add_member, name="member-add"),
    path(
        "settings/members/<int:user_id>/<str:action>",
        settings_pages.member_access,
        name="member-access",
    ),
    path(
        "settings/password/",
        login_required(settings_pages.PasswordChange.as_view()),
        name="password-change",
    ),
    # Settings → Security: sessions (offboard.security)
    path("settings/security/", security_pages.security_page, name="security"),
    path(
        "settings/security/sessions/<int:session_id>/end",
        security_pages.end_session,
        name="session-end",
    ),
    path(
        "settings/security/sessions/end-others",
        security_pages.end_other_sessions,
        name="sessions-end-others",
    ),
    # Settings → Single sign-on (admins; offboard.sso)
    path("settings/sso/", sso_pages.sso_page, name="sso-settings"),
    path("settings/sso/test", sso_pages.test_discovery, name="sso-test"),
    path("settings/sso/remove", sso_pages.remove, name="sso-remove"),
    path("settings/tokens/", tokens_card.create_token, name="token-create"),
    path("settings/tokens/<int:token_id>/revoke", tokens_card.revoke_token, name="token-revoke"),
    path("settings/tokens/policy", tokens_card.token_policy, name="token-policy"),
    path("settings/calendar/", settings_pages.create_feed, name="calendar-feed-create"),
    path("settings/calendar/revoke", settings_pages.revoke_feed, name="calendar-feed-revoke"),
    path("settings/reminders/", reminders_card.save_preferences, name="reminder-preferences"),
    # Settings → Inbound webhooks (admins)
    path("settings/inbound/", inbound_pages.create_endpoint, name="inbound-create"),
    path(
        "settings/inbound/<int:endpoint_id>/rotate",
        inbound_pages.rotate_secret,
        name="inbound-rotate",
    ),
    path(
        "settings/inbound/<int:endpoint_id>/revoke",
        inbound_pages.revoke_endpoint,
        name="inbound-revoke",
    ),
    # Settings → Outbound webhooks (admins)
    path("settings/connections/", connection_pages.create, name="connection-create"),
    path(
        "settings/connections/<int:connection_id>/edit",
        connection_pages.edit,
        name="connection-edit",
    ),
    path(
        "settings/connections/<int:connection_id>/test",
        connection_pages.test,
        name="connection-test",
    ),
    path(
        "settings/connections/<int:connection_id>/disable",
        connection_pages.disable,
        name="connection-disable",
    ),
    path("settings/webhooks/", webhook_pages.create_endpoint, name="webhook-create"),
    path(
        "settings/webhooks/<int:endpoint_id>/rotate",
        webhook_pages.rotate_secret,
        name="webhook-rotate",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/<str:action>",
        webhook_pages.endpoint_state,
        name="webhook-state",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/deliveries/",
        webhook_pages.deliveries,
        name="webhook-deliveries",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/deliveries/<str:delivery_id>/redeliver",
        webhook_pages.redeliver_now,
        name="webhook-redeliver",
    ),
]
