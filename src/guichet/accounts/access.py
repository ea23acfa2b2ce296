"""Staff access to a household's record: recorded at each opening, reviewable.

Views call ``record_access`` when a staff member opens a household's page, one of its files or
its account (not when a family opens its own). Each access is also a journal entry (ids only),
so the record of accesses is tamper-evident like every other write; the rows are append-only
(no update or delete outside ``access_purge``).
Review: ``guichet access list``, the administration (read-only), ``household_accesses``.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from guichet.common.actor import Actor
from guichet.journal.services import journal_append

from .models import RecordAccess

ACCESS_LOG_DAYS = 365 * 2  # kept two years, then purged (docs/security.md)


def record_access(*, user, household, what: str, now: dt.datetime | None = None) -> RecordAccess:
    now = now or timezone.now()
    with transaction.atomic():
        row = RecordAccess.objects.create(user=user, organisation_id=household.organisation_id,
                                          household_id=household.pk, what=what[:40], at=now)
        journal_append(actor=Actor.for_user(user), operation="accounts.record.access", objects=[household],
                       details={"household": household.pk, "what": row.what, "access": row.pk},
                       organisation_id=household.organisation_id, now=now)
    return row


def household_accesses(household_id: int, *, since: dt.datetime | None = None):
    qs = RecordAccess.objects.filter(household_id=household_id).select_related("user")
    return qs.filter(at__gte=since) if since else qs


def access_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the rows older than ``ACCESS_LOG_DAYS``; returns how many."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=ACCESS_LOG_DAYS)
    with transaction.atomic():
        deleted = RecordAccess.objects.filter(at__lt=cutoff).delete()[0]
        if deleted:
            journal_append(actor=Actor.system("purge"), operation="accounts.record.purge",
                           details={"deleted": deleted, "before": cutoff.date().isoformat()}, now=now)
    return deleted
