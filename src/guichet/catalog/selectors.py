"""Reading the catalogue."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import ContactPoint, Organisation, Portal, Service


def portal_get(slug: str) -> Portal | None:
    return Portal.objects.filter(slug=slug).first()


def portal_services(portal: Portal) -> QuerySet[Service]:
    return (
        Service.objects.filter(organisation__portal=portal)
        .select_related("organisation")
        .prefetch_related("procedures", "contacts")
    )


def portal_organisations(portal: Portal) -> QuerySet[Organisation]:
    return Organisation.objects.filter(portal=portal)


def portal_contacts(portal: Portal) -> QuerySet[ContactPoint]:
    return ContactPoint.objects.filter(organisation__portal=portal).select_related("organisation", "service")
