from django.contrib import admin

from guichet.common.actor import Actor

from .models import ApiToken, EditorRole, RecordAccess, StaffRole
from .services import role_add, role_remove


@admin.register(EditorRole)
class EditorRoleAdmin(admin.ModelAdmin):
    list_display = ("user", "portal", "organisation", "service")
    list_filter = ("portal",)


@admin.register(StaffRole)
class StaffRoleAdmin(admin.ModelAdmin):
    """Finance, IT, administrator and counter roles. Adding and deleting go through the same
    services as ``guichet role`` (journalled); a role is not edited in place: delete and add."""

    list_display = ("user", "kind", "organisation", "granted_at")
    list_filter = ("kind", "organisation__portal", "organisation")
    search_fields = ("user__username", "user__email")
    fields = ("user", "organisation", "kind")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        result = role_add(email=obj.user.email or obj.user.username, kind=obj.kind,
                          portal_slug=obj.organisation.portal.slug, organisation_slug=obj.organisation.slug,
                          actor=Actor.for_user(request.user))
        obj.pk = StaffRole.objects.get(user=result.user, organisation=obj.organisation, kind=obj.kind).pk

    def delete_model(self, request, obj):
        role_remove(email=obj.user.email or obj.user.username, kind=obj.kind,
                    portal_slug=obj.organisation.portal.slug, organisation_slug=obj.organisation.slug,
                    actor=Actor.for_user(request.user))

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("user", "organisation__portal"):
            self.delete_model(request, obj)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at", "revoked_at")
    readonly_fields = ("digest",)


@admin.register(RecordAccess)
class RecordAccessAdmin(admin.ModelAdmin):
    """Who opened which household's record: read-only, for review."""

    list_display = ("at", "user", "organisation", "household_id", "what")
    list_filter = ("organisation", "what")
    search_fields = ("user__username", "household_id")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
