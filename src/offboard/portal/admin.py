from typing import Any

from django.contrib import admin

from offboard.portal.models import PortalLink, PortalReminder, PortalResponse


class _ReadOnly(admin.ModelAdmin):
    """Read only: portal records change through the services (API, CLI, the portal itself)."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(PortalLink)
class PortalLinkAdmin(_ReadOnly):
    list_display = ("case", "contact", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("org",)
    search_fields = ("case__ref", "contact__email")
    exclude = ("token_hash",)


@admin.register(PortalResponse)
class PortalResponseAdmin(_ReadOnly):
    list_display = ("case", "contact", "kind", "at", "event_index")
    list_filter = ("kind", "org")


@admin.register(PortalReminder)
class PortalReminderAdmin(_ReadOnly):
    list_display = ("case", "contact", "sent_at", "event_index")
    list_filter = ("org",)
