from django.contrib import admin

from .models import ApiToken, EditorRole


@admin.register(EditorRole)
class EditorRoleAdmin(admin.ModelAdmin):
    list_display = ("user", "portal", "organisation", "service")
    list_filter = ("portal",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at", "revoked_at")
    readonly_fields = ("digest",)
