"""Retention policy: how long each kind of personal data is kept, and the purge.

``RETENTION`` is the policy (documented in docs/security.md); ``guichet purge`` runs every
purger whose data has expired. Each purger takes ``now`` and ``dry_run`` and returns how many
rows it deleted (or would delete). Modules add theirs with ``register`` (from their
``AppConfig.ready``): billing keeps issued invoices for their legal period (10 years, Code de
commerce L123-22) and registers nothing that would delete them earlier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from guichet.common.actor import Actor
from guichet.journal.services import journal_append


@dataclass(frozen=True)
class Purger:
    kind: str
    keep: str  # how long, in words, for the operator and the docs
    run: Callable[..., int]


UNVERIFIED_ACCOUNT_DAYS = 7
FAILED_SIGN_IN_DAYS = 30


def _unverified_accounts(*, now: dt.datetime, dry_run: bool) -> int:
    """Family accounts never activated (the verification link lasts one day)."""
    from guichet.bookings.models import Guardian

    qs = get_user_model().objects.filter(
        is_active=False, is_staff=False, is_superuser=False, last_login__isnull=True,
        date_joined__lt=now - dt.timedelta(days=UNVERIFIED_ACCOUNT_DAYS),
    ).exclude(pk__in=Guardian.objects.values("user"))
    return qs.count() if dry_run else qs.delete()[1].get(get_user_model()._meta.label, 0)


def _failed_sign_ins(*, now: dt.datetime, dry_run: bool) -> int:
    from axes.models import AccessAttempt, AccessFailureLog

    cutoff = now - dt.timedelta(days=FAILED_SIGN_IN_DAYS)
    n = 0
    for model in (AccessAttempt, AccessFailureLog):
        qs = model.objects.filter(attempt_time__lt=cutoff)
        n += qs.count() if dry_run else qs.delete()[0]
    return n


def _record_accesses(*, now: dt.datetime, dry_run: bool) -> int:
    from .access import ACCESS_LOG_DAYS, access_purge
    from .models import RecordAccess

    if dry_run:
        return RecordAccess.objects.filter(at__lt=now - dt.timedelta(days=ACCESS_LOG_DAYS)).count()
    return access_purge(now=now)


def _expired_sessions(*, now: dt.datetime, dry_run: bool) -> int:
    from django.contrib.sessions.models import Session

    from .models import UserSession

    n = 0
    # Django's own table too: migration 0006 copied its sessions and left them there.
    for model in (UserSession, Session):
        qs = model.objects.filter(expire_date__lt=now)
        n += qs.count() if dry_run else qs.delete()[0]
    return n


RETENTION: list[Purger] = [
    Purger("accounts.unverified", f"{UNVERIFIED_ACCOUNT_DAYS} days after sign-up", _unverified_accounts),
    Purger("accounts.failed_sign_ins", f"{FAILED_SIGN_IN_DAYS} days", _failed_sign_ins),
    Purger("accounts.record_accesses", "2 years", _record_accesses),
    Purger("sessions.expired", "until the session expires (2 weeks)", _expired_sessions),
]


def register(purger: Purger) -> None:
    if any(p.kind == purger.kind for p in RETENTION):
        raise ValueError(f"a purger for {purger.kind!r} is already registered")
    RETENTION.append(purger)


def purge(*, actor: Actor, now: dt.datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Run every purger; one transaction each, one journal entry for the whole run (counts only)."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for purger in RETENTION:
        with transaction.atomic():
            counts[purger.kind] = purger.run(now=now, dry_run=dry_run)
    if not dry_run:
        with transaction.atomic():
            journal_append(actor=actor, operation="accounts.purge", details={"deleted": counts}, now=now)
    return counts
