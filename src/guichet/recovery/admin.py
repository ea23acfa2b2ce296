"""Read-only back-office views: gates are configured with ``guichet recovery gates load FILE``
and paper forms entered through the recovery screens, which journal them."""

from django.contrib import admin

from guichet.catalog.admin import ReadOnlyAdmin

from .models import OnlineGate, PaperForm


@admin.register(OnlineGate)
class OnlineGateAdmin(ReadOnlyAdmin):
    list_display = ("organisation", "function", "activity", "procedure", "when_degraded")
    list_filter = ("function", "when_degraded", "organisation")


@admin.register(PaperForm)
class PaperFormAdmin(ReadOnlyAdmin):
    list_display = ("organisation", "kind", "series", "number", "copy", "state", "received_at", "entered_at")
    list_filter = ("kind", "state", "organisation")
    search_fields = ("series",)
    exclude = ("content_digest",)
