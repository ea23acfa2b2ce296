"""Read-only back-office views of the family portal's tables. Activities, sites and sessions are
configured with ``guichet bookings load FILE``; bookings, cancellations, offers and
justifications go through the services (agent screens), which journal them."""

from django.contrib import admin

from guichet.catalog.admin import ReadOnlyAdmin

from .models import (
    Activity,
    AgentRole,
    Basket,
    Booking,
    Household,
    Justification,
    RegistrationWindow,
    Session,
    SessionPart,
    Site,
    Unit,
    WaitlistEntry,
)


class UnitInline(admin.TabularInline):
    model = Unit
    fields = ("code", "name", "parts", "position")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ("name", "organisation", "kind", "booking_rule", "cancellation_rule", "waitlist_mode")
    list_filter = ("kind", "organisation")
    inlines = [UnitInline]


@admin.register(Site)
class SiteAdmin(ReadOnlyAdmin):
    list_display = ("name", "organisation", "slug")


class PartInline(admin.TabularInline):
    model = SessionPart
    fields = ("part", "capacity", "booked")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = ("date", "activity", "site", "closed")
    list_filter = ("activity", "site", "closed")
    date_hierarchy = "date"
    inlines = [PartInline]


@admin.register(RegistrationWindow)
class RegistrationWindowAdmin(ReadOnlyAdmin):
    list_display = ("activity", "first_date", "last_date", "opens_at", "residents_open_at", "closes_at")


@admin.register(Household)
class HouseholdAdmin(ReadOnlyAdmin):
    list_display = ("reference", "organisation", "resident")
    search_fields = ("reference",)


@admin.register(Basket)
class BasketAdmin(ReadOnlyAdmin):
    list_display = ("pk", "household", "mode", "status", "received_at", "answered_at", "channel")
    list_filter = ("status", "mode")


@admin.register(Booking)
class BookingAdmin(ReadOnlyAdmin):
    list_display = ("pk", "session", "child", "unit", "status", "late", "after_deadline", "booked_at")
    list_filter = ("status", "late", "after_deadline")


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyAdmin):
    list_display = ("pk", "session", "child", "unit", "status", "requested_at", "offer_expires_at")
    list_filter = ("status",)


@admin.register(Justification)
class JustificationAdmin(ReadOnlyAdmin):
    list_display = ("pk", "booking", "kind", "received_at")


@admin.register(AgentRole)
class AgentRoleAdmin(ReadOnlyAdmin):
    list_display = ("user", "organisation", "site")
