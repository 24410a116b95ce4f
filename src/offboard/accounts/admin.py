from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from offboard.accounts.models import ApiToken, Membership, Organization, User

admin.site.register(User, UserAdmin)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "org", "role")
    list_filter = ("role", "org")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "org", "prefix", "created_at", "revoked_at")
    readonly_fields = ("token_hash", "prefix")
