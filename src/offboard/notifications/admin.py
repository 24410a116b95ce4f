from django.contrib import admin

from offboard.notifications.models import ClosureReceipt


@admin.register(ClosureReceipt)
class ClosureReceiptAdmin(admin.ModelAdmin):
    """Read only: receipts change through the outbox (`offboard case receipt REF --retry`)."""

    list_display = ("case", "state", "attempts", "next_attempt_at", "sent_at", "org")
    list_filter = ("state", "org")
    search_fields = ("case__ref",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
