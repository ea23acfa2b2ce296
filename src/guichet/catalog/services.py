"""Writing the catalogue. Every function journals its change in the caller's transaction.

These are called by the notice importer and the back-office; each is idempotent (an upsert
keyed by slug), so loading the same notice twice changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from guichet.common.actor import Actor
from guichet.common.upsert import upsert_row as _upsert
from guichet.journal.services import journal_append

from .hours import parse_schedule, schedule_to_data
from .models import ContactPoint, Organisation, Portal, Procedure, Service


def portal_upsert(*, actor: Actor, slug: str, **values: Any) -> Portal:
    obj, _created = _upsert(Portal, actor=actor, operation="catalog.portal.upsert", keys={"slug": slug},
                            values=values, organisation_id=None)
    return obj


def organisation_upsert(*, actor: Actor, portal: Portal, slug: str, **values: Any) -> Organisation:
    obj, created = _upsert(Organisation, actor=actor, operation="catalog.organisation.upsert",
                           keys={"portal": portal, "slug": slug}, values=values, organisation_id=None)
    return obj


def service_upsert(*, actor: Actor, organisation: Organisation, slug: str, **values: Any) -> Service:
    obj, _created = _upsert(Service, actor=actor, operation="catalog.service.upsert",
                            keys={"organisation": organisation, "slug": slug}, values=values,
                            organisation_id=organisation.pk)
    return obj


def procedure_upsert(*, actor: Actor, service: Service, slug: str, **values: Any) -> Procedure:
    obj, _created = _upsert(Procedure, actor=actor, operation="catalog.procedure.upsert",
                            keys={"service": service, "slug": slug},
                            values={"organisation": service.organisation, **values},
                            organisation_id=service.organisation_id)
    return obj


def contact_upsert(*, actor: Actor, organisation: Organisation, key: str, hours: Any = None,
                   **values: Any) -> ContactPoint:
    """``hours`` is validated (``HoursError`` names the faulty field) and stored normalised."""
    normalised = schedule_to_data(parse_schedule(hours))
    obj, _created = _upsert(ContactPoint, actor=actor, operation="catalog.contact.upsert",
                            keys={"organisation": organisation, "key": key},
                            values={**values, "hours": normalised}, organisation_id=organisation.pk)
    return obj


def portal_mark_checked(*, actor: Actor, portal: Portal, now) -> Portal:
    """Record that an editor has checked the page is still accurate ("last checked")."""
    with transaction.atomic():
        Portal.objects.filter(pk=portal.pk).update(last_checked_at=now)
        portal.last_checked_at = now
        journal_append(actor=actor, operation="catalog.portal.checked", objects=[portal],
                       payload={"at": now}, organisation_id=None, now=now)
    return portal
