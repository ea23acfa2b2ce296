"""Read-only views of the catalogue for staff. Changes go through notice files, the editors'
back-office or the API, so that every one of them is validated and journaled."""

from django.contrib import admin

from .models import ContactPoint, Organisation, Portal, Procedure, Service


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Portal)
class PortalAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "requires_approval", "last_checked_at")


@admin.register(Organisation)
class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ("name", "portal", "kind", "requires_approval")
    list_filter = ("portal",)


@admin.register(Service)
class ServiceAdmin(ReadOnlyAdmin):
    list_display = ("name", "organisation")
    list_filter = ("organisation__portal",)


@admin.register(Procedure)
class ProcedureAdmin(ReadOnlyAdmin):
    list_display = ("name", "service")
    list_filter = ("service__organisation__portal",)


@admin.register(ContactPoint)
class ContactPointAdmin(ReadOnlyAdmin):
    list_display = ("label", "kind", "value", "organisation", "temporary", "valid_until")
    list_filter = ("organisation__portal", "kind", "temporary")
