"""A household's personal data: download (right of access and portability, RGPD art. 15 and 20)
and erasure request (art. 17) with, for the agent, what can and cannot be erased and why.

The export gathers what Guichet holds about the household in one JSON document: the file, its
children, its guardians' accounts, bookings, waiting lists, justifications (their existence,
not the files: those are downloaded one by one from the family page), and the staff accesses
to the record, and the billing account (invoices, payments, balance). Other modules add their
part with ``register_export``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from guichet.common.actor import Actor
from guichet.journal.services import journal_append

from .models import RecordAccess

_EXPORTS: dict[str, Callable] = {}


def register_export(name: str, fn: Callable) -> None:
    """``fn(household) -> JSON-serialisable`` adds a section ``name`` to the download."""
    _EXPORTS[name] = fn


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def household_export(household, *, now: dt.datetime | None = None) -> dict:
    from guichet.bookings.models import Booking, Child, Guardian, Justification, WaitlistEntry

    now = now or timezone.now()
    doc: dict = {
        "generated_at": _iso(now),
        "household": {"reference": household.reference, "name": household.display_name,
                      "email": household.email, "postal_address": household.postal_address,
                      "resident": household.resident,
                      "organisation": household.organisation.name, "created_at": _iso(household.created_at)},
        "guardians": [{"email": g.user.email, "since": _iso(g.user.date_joined),
                       "last_login": _iso(g.user.last_login)}
                      for g in Guardian.objects.filter(household=household).select_related("user").order_by("pk")],
        "children": [{"first_name": c.first_name, "birth_date": _iso(c.birth_date), "school": c.school}
                     for c in Child.objects.filter(household=household).order_by("birth_date", "pk")],
        "bookings": [{"child": b.child.first_name, "date": _iso(b.session.date), "activity": b.session.activity.name,
                      "site": b.session.site.name, "unit": b.unit.name, "status": b.status,
                      "booked_at": _iso(b.booked_at), "cancelled_at": _iso(b.cancelled_at), "late": b.late,
                      "channel": b.channel, "reason": b.reason}
                     for b in Booking.objects.filter(household=household)
                     .select_related("child", "session__activity", "session__site", "unit").order_by("session__date", "pk")],
        "waiting_lists": [{"child": w.child.first_name, "date": _iso(w.session.date), "status": w.status,
                           "requested_at": _iso(w.requested_at)}
                          for w in WaitlistEntry.objects.filter(household=household)
                          .select_related("child", "session").order_by("requested_at", "pk")],
        "justifications": [{"date": _iso(j.booking.session.date), "kind": j.kind, "received_at": _iso(j.received_at),
                            "has_document": bool(j.document)}
                           for j in Justification.objects.filter(booking__household=household)
                           .select_related("booking__session").order_by("received_at", "pk")],
        "staff_accesses": [{"at": _iso(a.at), "what": a.what, "staff_account": a.user_id}
                           for a in RecordAccess.objects.filter(household_id=household.pk).order_by("at", "pk")],
    }
    doc["billing"] = _billing_export(household)
    for name, fn in _EXPORTS.items():
        doc[name] = fn(household)
    return doc


def _billing_export(household) -> dict:
    """Issued invoices and credit notes (with what each still owes), deposits, payments, refunds
    and the balance, read through the billing module's selectors (drafts are not the family's yet)."""
    from guichet.billing import selectors

    balance = selectors.household_balance(household=household)
    return {
        "balance_cents": balance.balance,
        "invoices": [{"number": inv.number, "kind": inv.kind, "first_month": _iso(inv.first_month),
                      "last_month": _iso(inv.last_month), "issue_date": _iso(inv.issue_date),
                      "due_date": _iso(inv.due_date), "total_cents": inv.total_cents, "due_cents": due}
                     for inv, due in selectors.household_invoices(household=household)],
        "payments": [{"receipt_number": p.receipt_number, "kind": p.kind, "method": p.method,
                      "amount_cents": p.amount_cents, "received_at": _iso(p.received_at), "reference": p.reference}
                     for p in selectors.household_payments(household=household)],
    }


def record_export(*, household, user, now=None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        journal_append(actor=Actor.for_user(user), operation="accounts.personal_data.export", objects=[household],
                       details={"household": household.pk}, organisation_id=household.organisation_id, now=now)


# --- Erasure --------------------------------------------------------------------------------

LEGAL_YEARS = 10  # accounting documents (Code de commerce L123-22)


def erasure_assessment(household, *, now: dt.datetime | None = None) -> list[dict]:
    """What can be erased now and what cannot, and why: one row per kind of data.

    Each row: ``kind``, ``count``, ``erasable`` (``erasure_execute`` erases it), ``blocks``
    (while there is any, nothing is erased: the agent must act first) and ``why``.
    """
    from guichet.bookings.models import Booking, Child, Guardian, Justification, WaitlistEntry

    now = now or timezone.now()
    today = now.date()
    future = Booking.objects.filter(household=household, status="booked", session__date__gte=today).count()
    waiting = WaitlistEntry.objects.filter(household=household, status__in=("waiting", "offered"),
                                           session__date__gte=today).count()
    recent = Booking.objects.filter(household=household, session__date__gte=today - dt.timedelta(days=365 * LEGAL_YEARS))
    rows = [
        {"kind": _("Guardians' accounts"), "count": Guardian.objects.filter(household=household).count(),
         "erasable": True, "blocks": False,
         "why": _("Accounts are closed and their e-mail address deleted; the journal keeps only their number.")},
        {"kind": _("Future bookings"), "count": future, "erasable": future == 0, "blocks": future > 0,
         "why": _("Cancel them first (the places go to other families).") if future
         else _("None.")},
        {"kind": _("Places on a waiting list"), "count": waiting, "erasable": waiting == 0, "blocks": waiting > 0,
         "why": _("Withdraw them first.") if waiting else _("None.")},
        {"kind": _("Past bookings"), "count": recent.filter(session__date__lt=today).count(), "erasable": False,
         "blocks": False,
         "why": _("They are the basis of invoices, kept %(years)d years by law (Code de commerce L123-22); "
                  "children's first names are replaced by a number.") % {"years": LEGAL_YEARS}},
        {"kind": _("Justifications (medical certificates...)"),
         "count": Justification.objects.filter(booking__household=household).count(), "erasable": True,
         "blocks": False,
         "why": _("The files are deleted; the fact that an absence was justified stays with the invoice.")},
        {"kind": _("Children"), "count": Child.objects.filter(household=household).count(), "erasable": True,
         "blocks": False,
         "why": _("First names become a number, school is deleted, birth date keeps only the year "
                  "(age-based prices of the invoices kept).")},
        {"kind": _("Family file"), "count": 1, "erasable": True, "blocks": False,
         "why": _("Name and e-mail address are deleted; the file number stays on the invoices.")},
    ]
    for fn in _ASSESSMENTS:
        rows.extend({"blocks": False, **row} for row in fn(household, now))
    return rows


_ASSESSMENTS: list[Callable] = []


def register_assessment(fn: Callable) -> None:
    """``fn(household, now) -> [{"kind", "count", "erasable", "why"}]`` (billing: invoices);
    a row may say ``"blocks": True`` to keep the erasure from running."""
    _ASSESSMENTS.append(fn)


_ERASERS: dict[str, Callable] = {}


def register_eraser(name: str, fn: Callable) -> None:
    """``fn(household, now) -> int`` erases a module's personal data of the household (within
    the erasure's transaction) and returns how many rows it changed. Keep what the law keeps."""
    _ERASERS[name] = fn


def erasure_request(*, household, user, now=None):
    """Record a family's erasure request; asking again while one is open changes nothing."""
    from .models import ErasureRequest

    now = now or timezone.now()
    with transaction.atomic():
        existing = ErasureRequest.objects.filter(household_id=household.pk, status="open").first()
        if existing is not None:
            return existing, False
        req = ErasureRequest.objects.create(organisation_id=household.organisation_id, household_id=household.pk,
                                            requested_by=user, requested_at=now)
        journal_append(actor=Actor.for_user(user), operation="accounts.erasure.request", objects=[household, req],
                       details={"household": household.pk, "request": req.pk},
                       organisation_id=household.organisation_id, now=now)
    return req, True


def erasure_answer(*, request_id: int, organisation_ids, user, now=None):
    """The agent has reviewed and answered the family (what was erased, what is kept and why)."""
    from .models import ErasureRequest

    now = now or timezone.now()
    with transaction.atomic():
        req = ErasureRequest.objects.select_for_update().filter(pk=request_id, organisation_id__in=organisation_ids).first()
        if req is None:
            return None
        if req.status == "open":
            req.status, req.answered_at, req.answered_by = "answered", now, user
            req.save(update_fields=["status", "answered_at", "answered_by"])
            journal_append(actor=Actor.for_user(user), operation="accounts.erasure.answer", objects=[req],
                           details={"household": req.household_id, "request": req.pk},
                           organisation_id=req.organisation_id, now=now)
    return req


class ErasureRefused(Exception):
    """The erasure cannot run now; ``message`` says why (nothing was changed)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


ERASED_NAME = "—"


def _close_account(user) -> bool:
    """Close a family account that belongs to no other family file and holds no staff role:
    inactive, no password, its address replaced by one that names nobody. Returns whether it
    was closed (a staff member or a guardian of another file keeps their account)."""
    from axes.models import AccessAttempt, AccessFailureLog
    from django.db.models import Q

    from guichet.bookings.models import Guardian

    staff = user.is_superuser or user.is_staff or type(user).objects.filter(pk=user.pk).filter(
        Q(staff_roles__isnull=False) | Q(editor_roles__isnull=False) | Q(booking_agent_roles__isnull=False)).exists()
    if staff or Guardian.objects.filter(user=user).exists():  # a deactivated staff account too
        return False
    for model in (AccessAttempt, AccessFailureLog):
        model.objects.filter(username__in={user.username, user.email}).delete()
    user.username = user.email = f"erased-{user.pk}@erased.invalid"
    user.first_name = user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["username", "email", "first_name", "last_name", "is_active", "password"])
    return True


def erasure_execute(*, request_id: int, organisation_ids, user, now: dt.datetime | None = None):
    """Erase what can be erased of the household of an erasure request (RGPD art. 17).

    Refused (``ErasureRefused``, nothing changed) while a row of the assessment ``blocks``
    (future bookings, places on a waiting list). Otherwise, in one transaction: guardians
    unlinked and their accounts closed, children's first names replaced by a number, school
    deleted, birth date kept to the year, justification files deleted, reasons typed on bookings
    deleted, the file's name, e-mail and postal address deleted, modules' erasers run. Bookings, invoices and
    payments stay (legal period); the journal entry holds ids and counts only. Running it again
    on an erased request does nothing. Returns the request, or None when it is not in
    ``organisation_ids``.
    """
    from guichet.bookings.models import Booking, Child, Guardian, Household, Justification

    from .models import ErasureRequest

    now = now or timezone.now()
    files = []
    with transaction.atomic():
        req = (ErasureRequest.objects.select_for_update()
               .filter(pk=request_id, organisation_id__in=organisation_ids).first())
        if req is None or req.erased_at is not None:
            return req
        household = Household.objects.select_for_update().filter(pk=req.household_id).first()
        if household is None:
            raise ErasureRefused(_("This family file no longer exists."))
        blocking = [row for row in erasure_assessment(household, now=now) if row["blocks"]]
        if blocking:
            raise ErasureRefused(_("Nothing was erased: %(what)s.") % {
                "what": "; ".join(f"{row['kind']} ({row['count']}): {row['why']}" for row in blocking)})
        counts = {"guardians": 0, "accounts_closed": 0}
        for guardian in Guardian.objects.filter(household=household).select_related("user").order_by("pk"):
            account = guardian.user
            guardian.delete()
            counts["guardians"] += 1
            counts["accounts_closed"] += _close_account(account)
        children = list(Child.objects.filter(household=household).order_by("birth_date", "pk"))
        for n, child in enumerate(children, start=1):
            child.first_name = str(n)
            child.school = ""
            child.birth_date = child.birth_date.replace(month=1, day=1)
            child.save(update_fields=["first_name", "school", "birth_date"])
        counts["children"] = len(children)
        justifications = list(Justification.objects.filter(booking__household=household).exclude(document=""))
        for j in justifications:
            files.append((j.document.storage, j.document.name))
            j.document = ""
            j.save(update_fields=["document"])
        counts["justification_files"] = len(justifications)
        counts["booking_reasons"] = Booking.objects.filter(household=household).exclude(reason="").update(reason="")
        counts["postal_address"] = int(bool(household.postal_address))
        household.display_name, household.email, household.postal_address = ERASED_NAME, "", ""
        household.save(update_fields=["display_name", "email", "postal_address"])
        for name, fn in _ERASERS.items():
            counts[name] = fn(household, now)
        req.erased_at, req.erased_by = now, user
        fields = ["erased_at", "erased_by"]
        if req.status == ErasureRequest.Status.OPEN:
            req.status, req.answered_at, req.answered_by = ErasureRequest.Status.ANSWERED, now, user
            fields += ["status", "answered_at", "answered_by"]
        req.save(update_fields=fields)
        journal_append(actor=Actor.for_user(user), operation="accounts.erasure.execute", objects=[household, req],
                       details={"household": household.pk, "request": req.pk, "erased": counts},
                       organisation_id=household.organisation_id, now=now)

        def delete_files():
            for storage, name in files:
                storage.delete(name)

        # The files go once the erasure is committed: a rolled-back erasure keeps them.
        transaction.on_commit(delete_files)
    return req
