"""Staff access to a household's record: recorded at each opening, reviewable.

Views call ``record_access`` when a staff member opens a household's page, one of its files or
its account (not when a family opens its own). Reading the record is not a change, so it is not
journalled; the rows are append-only (no update or delete outside ``access_purge``).
Review: ``guichet access list``, the administration (read-only), ``household_accesses``.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from .models import RecordAccess

ACCESS_LOG_DAYS = 365 * 2  # kept two years, then purged (docs/security.md)


def record_access(*, user, household, what: str, now: dt.datetime | None = None) -> RecordAccess:
    return RecordAccess.objects.create(user=user, organisation_id=household.organisation_id,
                                       household_id=household.pk, what=what[:40], at=now or timezone.now())


def household_accesses(household_id: int, *, since: dt.datetime | None = None):
    qs = RecordAccess.objects.filter(household_id=household_id).select_related("user")
    return qs.filter(at__gte=since) if since else qs


def access_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the rows older than ``ACCESS_LOG_DAYS``; returns how many."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=ACCESS_LOG_DAYS)
    return RecordAccess.objects.filter(at__lt=cutoff).delete()[0]
