from django.contrib import admin

from offboard.cases.models import (
    AccessGrant,
    Addendum,
    Approval,
    DataDisposition,
    Deliverable,
    HandoverItem,
    OffboardingCase,
    Settlement,
    Step,
    Waiver,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Cases change only through services (one event per change); the admin only reads."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OffboardingCase)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ("ref", "client", "state", "owner", "effective_end_date", "org")
    list_filter = ("state", "org")
    search_fields = ("ref", "client__name")


for model in (
    Step,
    Deliverable,
    HandoverItem,
    AccessGrant,
    DataDisposition,
    Settlement,
    Waiver,
    Approval,
    Addendum,
):
    admin.site.register(model, ReadOnlyAdmin)
