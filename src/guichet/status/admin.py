from django.contrib import admin

from guichet.catalog.admin import ReadOnlyAdmin

from .models import Advisory, Availability, ChangeSet, Incident, RestorationTarget


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("title", "organisation", "nature", "started_at", "ended_at", "updated_at")


@admin.register(Availability)
class AvailabilityAdmin(ReadOnlyAdmin):
    list_display = ("procedure", "channel", "state", "incident", "updated_at")
    list_filter = ("state", "channel")


@admin.register(RestorationTarget)
class RestorationTargetAdmin(ReadOnlyAdmin):
    list_display = ("service", "procedure", "precision", "text", "recorded_at")


@admin.register(Advisory)
class AdvisoryAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "audience", "published_at", "expires_at")


@admin.register(ChangeSet)
class ChangeSetAdmin(ReadOnlyAdmin):
    list_display = ("title", "portal", "status", "author_ref", "created_at", "published_at")
    list_filter = ("status", "portal")
