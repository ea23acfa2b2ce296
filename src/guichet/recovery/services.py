"""Degraded mode and coming back: the gates' configuration and the paper forms entered later.

Paper forms (``PaperForm``)
    A form keeps its original date and time (``received_at``) and its number in its series
    (form book, receipt book). The number is the idempotency key: entering a form again with
    the same content returns what was recorded the first time and acts no more. A form whose
    number was already entered with OTHER content is refused ("duplicate_number") unless the
    agent confirms that two paper forms really carry that number (``duplicate=True``): it is then
    kept as copy 2 (3...) and reported by ``selectors.numbering``.

Paper bookings: the order they were received
    Each form becomes a booking request (a ``Basket``, channel ``paper``) received at the form's
    original time, with the idempotency key ``paper-form:<id>``; the booking queue answers it
    in receipt order with the rules (deadline, registration window) evaluated at that original
    time — a form handed in before the deadline is not late because it was typed in after.
    Capacity is what is left when it is entered: an answer already given (at the counter while
    paper was used, or online) is never taken back. ``paper_bookings_import`` enters a batch in
    the order of the forms' original times (then numbers), so forms compete with each other in
    the order they were handed in. docs/guide-degraded-mode.md states the whole rule and why the
    online function stays suspended until the paper forms are entered.

Paper deposits
    A deposit receipt becomes a ``billing`` deposit (``deposit_record``) received at the
    receipt's original time, with its own receipt number from the system and the paper receipt
    number as reference; idempotency key ``paper-form:<id>``.

Each write is two short transactions, both idempotent: (1) the form (journaled
``recovery.paper.*``), (2) the booking request or deposit through its own module's service,
keyed by the form. A crash between them is repaired by entering the form again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from guichet.bookings.models import Activity, Basket, Child, Household, Session, Site, Unit
from guichet.catalog.models import Organisation, Procedure
from guichet.common.actor import Actor
from guichet.common.canonical import digest
from guichet.common.frdates import format_datetime_fr
from guichet.journal.services import journal_append

from .models import Function, OnlineGate, PaperForm

PARIS = ZoneInfo("Europe/Paris")
SERIES_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,19}$")
MAX_NUMBER = 999_999_999
MAX_AGE_DAYS = 800  # a paper form older than this is surely a typing error
MAX_ITEMS = 60
PAPER_CHANNEL = "paper"


class RecoveryError(Exception):
    """A refused action: ``code`` for programs, ``message`` for people, ``field`` for forms."""

    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message)
        self.code, self.message, self.field = code, str(message), field

    def __str__(self) -> str:
        return self.message


def _check_now(now) -> None:
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise ValueError("now must be an aware datetime")


# --- gates (configuration) ------------------------------------------------------------------


@dataclass
class GateSpec:
    function: str
    procedure: Procedure
    activity: Activity | None = None
    when_degraded: str = OnlineGate.WhenDegraded.WARN


def gates_replace(*, organisation: Organisation, specs: list[GateSpec], actor: Actor, now: dt.datetime) -> dict:
    """Make the organisation's gates exactly ``specs`` (a configuration file is declarative):
    missing ones are added, changed ones updated, others removed. Twice changes nothing.
    Returns counts ``{"added", "updated", "removed", "unchanged"}``."""
    _check_now(now)
    for i, spec in enumerate(specs):
        if spec.function not in Function.values:
            raise RecoveryError("invalid_function", _("Unknown online function."), f"gates[{i}].function")
        if spec.procedure.organisation_id != organisation.pk and \
                spec.procedure.service.organisation.portal_id != organisation.portal_id:
            raise RecoveryError("invalid_procedure", _("This procedure belongs to another town."),
                                f"gates[{i}].procedure")
        if spec.activity is not None and spec.activity.organisation_id != organisation.pk:
            raise RecoveryError("invalid_activity", _("This activity belongs to another organisation."),
                                f"gates[{i}].activity")
        if spec.when_degraded not in OnlineGate.WhenDegraded.values:
            raise RecoveryError("invalid_when_degraded", _("when_degraded must be 'warn' or 'close'."),
                                f"gates[{i}].when_degraded")
    wanted = {(s.function, s.activity.pk if s.activity else None, s.procedure.pk): s.when_degraded for s in specs}
    counts = {"added": 0, "updated": 0, "removed": 0, "unchanged": 0}
    with transaction.atomic(durable=True):
        existing = {(g.function, g.activity_id, g.procedure_id): g
                    for g in OnlineGate.objects.select_for_update(of=("self",)).filter(organisation=organisation).order_by("pk")}
        for key, gate in existing.items():
            if key not in wanted:
                gate.delete()
                counts["removed"] += 1
            elif gate.when_degraded != wanted[key]:
                gate.when_degraded = wanted[key]
                gate.save(update_fields=["when_degraded"])
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        for (function, activity_id, procedure_id), mode in wanted.items():
            if (function, activity_id, procedure_id) not in existing:
                OnlineGate.objects.create(organisation=organisation, function=function, activity_id=activity_id,
                                          procedure_id=procedure_id, when_degraded=mode)
                counts["added"] += 1
        if counts["added"] or counts["updated"] or counts["removed"]:
            journal_append(actor=actor, operation="recovery.gates.replace", objects=[organisation],
                           details=counts, payload=sorted(map(str, wanted.items())),
                           organisation_id=organisation.pk, now=now)
    return counts


# --- paper forms: common ------------------------------------------------------------------------


def _clean_series(series) -> str:
    text = str(series or "").strip()
    if not SERIES_RE.match(text):
        raise RecoveryError(
            "invalid_series",
            _("The series (form book) must be 1 to 20 letters, digits, '-', '_', '.' or '/'."), "series")
    return text


def _clean_number(number) -> int:
    try:
        n = int(str(number).strip())
    except (TypeError, ValueError):
        raise RecoveryError("invalid_number", _("The form number must be a whole number."), "number") from None
    if not 1 <= n <= MAX_NUMBER:
        raise RecoveryError("invalid_number", _("The form number must be between 1 and 999999999."), "number")
    return n


def _clean_received_at(received_at, now: dt.datetime) -> dt.datetime:
    if not isinstance(received_at, dt.datetime) or received_at.tzinfo is None:
        raise RecoveryError("invalid_received_at", _("Give the date and time written on the form."), "received_at")
    if received_at > now + dt.timedelta(minutes=5):
        raise RecoveryError("received_in_future", _("The form's date and time are in the future."), "received_at")
    if received_at < now - dt.timedelta(days=MAX_AGE_DAYS):
        raise RecoveryError("received_too_old", _("The form's date is more than two years ago: check it."),
                            "received_at")
    return received_at.astimezone(dt.UTC)


def _check_household(organisation: Organisation, household: Household) -> None:
    if household is None or household.organisation_id != organisation.pk:
        raise RecoveryError("unknown_household", _("No such family file in this organisation."), "household")


@dataclass
class PaperResult:
    form: PaperForm
    created: bool  # False: the same form was entered before (a retry): nothing more was done
    basket: Basket | None = None
    payment: object | None = None  # billing.Payment

    @property
    def booked(self) -> int:
        return sum(1 for i in (self.basket.result or {}).get("items", []) if i["outcome"] == "booked") \
            if self.basket is not None else 0


def _form_record(*, organisation: Organisation, kind: str, series: str, number: int, received_at: dt.datetime,
                 household: Household, content: dict, duplicate: bool, actor: Actor, now: dt.datetime,
                 details: dict) -> tuple[PaperForm, bool]:
    """Step 1: the form itself (or the one already entered with the same content)."""
    content_digest = digest({"kind": kind, "household": household.pk, "received_at": received_at, **content})
    for _attempt in range(3):
        try:
            with transaction.atomic(durable=True):
                same_number = list(PaperForm.objects.select_for_update(of=("self",)).filter(
                    organisation=organisation, kind=kind, series=series, number=number).order_by("copy"))
                for form in same_number:
                    if form.state == PaperForm.State.ENTERED and form.content_digest == content_digest:
                        return form, False
                if any(f.state == PaperForm.State.VOID for f in same_number):
                    raise RecoveryError(
                        "number_void", _("Form %(label)s was declared void: check the number.")
                        % {"label": f"{series}-{number}"}, "number")
                if same_number and not duplicate:
                    first = same_number[0]
                    raise RecoveryError(
                        "duplicate_number",
                        _("Form %(label)s was already entered with other content (form dated %(when)s). If two "
                          "paper forms really carry this number, confirm it: the second one is kept and reported "
                          "as a numbering duplicate.")
                        % {"label": f"{series}-{number}",
                           "when": format_datetime_fr(first.received_at)},
                        "number")
                form = PaperForm.objects.create(
                    organisation=organisation, kind=kind, series=series, number=number,
                    copy=(same_number[-1].copy + 1) if same_number else 1, received_at=received_at,
                    entered_at=now, household=household, content_digest=content_digest, actor_ref=actor.ref)
                journal_append(
                    actor=actor, operation=f"recovery.paper.{kind}.record", objects=[form, household],
                    details={"series": series, "number": number, "copy": form.copy,
                             "received_at": received_at.isoformat(), **details},
                    payload=content, organisation_id=organisation.pk, now=now)
                return form, True
        except IntegrityError:  # the same number entered at the same moment by someone else
            continue
    raise RecoveryError("busy", _("This form is being entered by someone else; try again."), "number")


def paper_void(*, organisation: Organisation, kind: str, series: str, number: int, reason: str, actor: Actor,
               now: dt.datetime) -> PaperForm:
    """Declare a number of a form book void (spoiled, torn, never used): it is no longer a gap.
    Refused when a form with this number was entered."""
    _check_now(now)
    if kind not in PaperForm.Kind.values:
        raise RecoveryError("invalid_kind", _("Choose booking forms or deposit receipts."), "kind")
    series, number = _clean_series(series), _clean_number(number)
    reason = str(reason or "").strip()[:200]
    if not reason:
        raise RecoveryError("reason_required", _("Say why this number is void."), "reason")
    with transaction.atomic(durable=True):
        existing = list(PaperForm.objects.select_for_update(of=("self",)).filter(
            organisation=organisation, kind=kind, series=series, number=number).order_by("pk"))
        for form in existing:
            if form.state == PaperForm.State.VOID:
                return form
        if existing:
            raise RecoveryError("number_entered", _("A form with this number was entered: it cannot be void."),
                                "number")
        form = PaperForm.objects.create(
            organisation=organisation, kind=kind, series=series, number=number, state=PaperForm.State.VOID,
            entered_at=now, content_digest=digest({"void": reason}), note=reason, actor_ref=actor.ref)
        journal_append(actor=actor, operation="recovery.paper.void", objects=[form],
                       details={"kind": kind, "series": series, "number": number}, payload=reason,
                       organisation_id=organisation.pk, now=now)
    return form


# --- paper bookings -----------------------------------------------------------------------------


def _clean_booking_items(organisation: Organisation, household: Household, items) -> list[dict]:
    """Every check the booking queue would refuse the whole request for, done BEFORE anything
    is written (bad input changes nothing); day-level refusals (full, closed, too late) are
    the queue's answer, recorded like any other."""
    if not isinstance(items, list | tuple) or not items:
        raise RecoveryError("empty_form", _("The form names no day: add at least one."), "items")
    if len(items) > MAX_ITEMS:
        raise RecoveryError("too_many_items", _("At most %(n)s days on one form.") % {"n": MAX_ITEMS}, "items")
    children = set(Child.objects.filter(household=household).values_list("pk", flat=True))
    cleaned = []
    for i, item in enumerate(items):
        try:
            child, session_id, unit = int(item["child"]), int(item["session"]), str(item["unit"]).strip()
        except (KeyError, TypeError, ValueError):
            raise RecoveryError("invalid_item", _("Each line must name a child, a day and a choice."),
                                f"items[{i}]") from None
        if child not in children:
            raise RecoveryError("not_your_child", _("This child is not part of the family file."),
                                f"items[{i}].child")
        session = Session.objects.filter(pk=session_id, organisation=organisation).first()
        if session is None:
            raise RecoveryError("unknown_session", _("This day does not exist."), f"items[{i}].session")
        if not Unit.objects.filter(activity_id=session.activity_id, code=unit).exists():
            raise RecoveryError("unit_not_offered", _("This choice is not offered for this day."),
                                f"items[{i}].unit")
        cleaned.append({"child": child, "session": session_id, "unit": unit})
    return sorted(cleaned, key=lambda x: (x["session"], x["child"], x["unit"]))


def paper_booking_record(
    *, organisation: Organisation, series: str, number: int, received_at: dt.datetime, household: Household,
    items: list[dict], mode: str = Basket.Mode.PARTIAL, actor: Actor, now: dt.datetime, duplicate: bool = False,
) -> PaperResult:
    """Enter a paper booking form: recorded with its number and original time, then answered
    by the booking queue in receipt order (rules at the original time). Same form again:
    the same answer, nothing more done."""
    from guichet.bookings import services as bookings

    _check_now(now)
    series, number = _clean_series(series), _clean_number(number)
    received_at = _clean_received_at(received_at, now)
    _check_household(organisation, household)
    if mode not in Basket.Mode.values:
        raise RecoveryError("invalid_mode", _("Choose what to do if some days are full."), "mode")
    cleaned = _clean_booking_items(organisation, household, items)
    form, created = _form_record(
        organisation=organisation, kind=PaperForm.Kind.BOOKING, series=series, number=number,
        received_at=received_at, household=household, content={"items": cleaned, "mode": mode},
        duplicate=duplicate, actor=actor, now=now, details={"items": len(cleaned), "mode": mode})
    basket = bookings.basket_submit(
        household=household, items=cleaned, mode=mode, actor=actor, now=form.received_at,
        idempotency_key=form.idempotency_key, channel=PAPER_CHANNEL)
    return PaperResult(form, created, basket=basket)


# --- paper deposits -----------------------------------------------------------------------------


def paper_deposit_record(
    *, organisation: Organisation, series: str, number: int, received_at: dt.datetime, household: Household,
    amount_cents: int, method: str, reference: str = "", actor: Actor, now: dt.datetime, duplicate: bool = False,
) -> PaperResult:
    """Enter a paper deposit receipt (cash, cheque) with its receipt number and original time:
    it becomes a deposit of the household (billing), received at that time."""
    from guichet.billing import services as billing
    from guichet.billing.errors import BillingError
    from guichet.billing.models import Payment

    _check_now(now)
    series, number = _clean_series(series), _clean_number(number)
    received_at = _clean_received_at(received_at, now)
    _check_household(organisation, household)
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or not 0 < amount_cents <= 100_000_00:
        raise RecoveryError("invalid_amount", _("The amount must be more than 0 and at most 100,000 euros."),
                            "amount_cents")
    if method not in (Payment.Method.CASH, Payment.Method.CHEQUE, Payment.Method.CARD):
        raise RecoveryError("invalid_method", _("Choose cash, cheque or card."), "method")
    reference = str(reference or "").strip()[:40]
    form, created = _form_record(
        organisation=organisation, kind=PaperForm.Kind.DEPOSIT, series=series, number=number,
        received_at=received_at, household=household,
        content={"amount_cents": amount_cents, "method": method, "reference": reference},
        duplicate=duplicate, actor=actor, now=now, details={"amount_cents": amount_cents, "method": method})
    label = _("paper receipt %(label)s") % {"label": form.label}
    try:
        payment = billing.deposit_record(
            household=household, amount_cents=amount_cents, method=method, actor=actor, now=form.received_at,
            idempotency_key=form.idempotency_key, reference=f"{label} {reference}".strip()[:60])
    except BillingError as exc:
        raise RecoveryError(getattr(exc, "code", "billing"), getattr(exc, "message", str(exc)),
                            getattr(exc, "field", "")) from None
    return PaperResult(form, created, payment=payment)


# --- import of a batch of paper booking forms ----------------------------------------------------

COLUMNS = ("series", "number", "received_at", "household", "child", "activity", "site", "date", "unit")


@dataclass
class ImportLine:
    line: int
    series: str
    number: int
    received_at: dt.datetime
    household: Household
    item: dict


@dataclass
class ImportReport:
    forms: int = 0
    created: int = 0
    already: int = 0
    booked: int = 0
    waitlisted: int = 0
    refused: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, column, message)
    results: list[PaperResult] = field(default_factory=list)


def _parse_local(text: str) -> dt.datetime | None:
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            naive = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - a wall-clock time in Paris
        except ValueError:
            continue
        return naive.replace(tzinfo=PARIS)
    return None


def _parse_date(text: str) -> dt.date | None:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    return None


def _parse_line(organisation: Organisation, n: int, row: dict, errors: list) -> ImportLine | None:
    """One line of the file: every problem of the line is reported, not only the first."""
    found: list[tuple[int, str, str]] = []
    series = number = None
    try:
        series = _clean_series(row["series"])
    except RecoveryError as exc:
        found.append((n, exc.field, exc.message))
    try:
        number = _clean_number(row["number"])
    except RecoveryError as exc:
        found.append((n, exc.field, exc.message))
    received_at = _parse_local(row["received_at"])
    if received_at is None:
        found.append((n, "received_at", _("Write the date and time as 2024-06-04 12:30 (Paris time).")))
    household = Household.objects.filter(organisation=organisation, reference=row["household"]).first()
    child = None
    if household is None:
        found.append((n, "household", _("No family file %(ref)s.") % {"ref": row["household"][:30]}))
    else:
        child = Child.objects.filter(household=household, first_name__iexact=row["child"]).order_by("pk").first()
        if child is None:
            found.append((n, "child", _("No child of that first name in family file %(ref)s.")
                          % {"ref": household.reference}))
    activity = Activity.objects.filter(organisation=organisation, slug=row["activity"]).first()
    if activity is None:
        found.append((n, "activity", _("No activity %(slug)s.") % {"slug": row["activity"][:40]}))
    site_known = Site.objects.filter(organisation=organisation, slug=row["site"]).exists()
    if not site_known:
        found.append((n, "site", _("No site %(slug)s.") % {"slug": row["site"][:40]}))
    day = _parse_date(row["date"])
    session = None
    if day is None:
        found.append((n, "date", _("Write the day as 2024-07-10.")))
    elif activity is not None and site_known:
        session = Session.objects.filter(organisation=organisation, activity=activity,
                                         site__slug=row["site"], date=day).first()
        if session is None:
            found.append((n, "date", _("No session of this activity at this site on this day.")))
    if session is not None and not Unit.objects.filter(activity_id=session.activity_id, code=row["unit"]).exists():
        found.append((n, "unit", _("This choice is not offered for this day.")))
    errors.extend(found)
    if found:
        return None
    return ImportLine(n, series, number, received_at, household,
                      {"child": child.pk, "session": session.pk, "unit": row["unit"]})


def _parse_import(organisation: Organisation, text: str) -> tuple[list[ImportLine], list[tuple[int, str, str]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";" if text.count(";") > text.count(",")
                            else ",")
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [(1, ", ".join(missing), _("Missing columns: %(columns)s.") % {"columns": ", ".join(missing)})]
    lines, errors = [], []
    for n, row in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        line = _parse_line(organisation, n, row, errors)
        if line is not None:
            lines.append(line)
    return lines, errors


def _check_forms(forms: dict, now: dt.datetime) -> list[tuple[int, str, str]]:
    """What only a whole form can show (its lines disagree, too many days, a date out of range),
    each problem on the line where it is."""
    errors = []
    for (series, number), group in forms.items():
        first = group[0]
        label = f"{series}-{number}"
        for g in group[1:]:
            if g.received_at != first.received_at or g.household.pk != first.household.pk:
                errors.append((g.line, "number", _(
                    "Form %(label)s: its lines must have the same family file and the same date and time.")
                    % {"label": label}))
        try:
            _clean_received_at(first.received_at, now)
        except RecoveryError as exc:
            errors.append((first.line, exc.field, exc.message))
        if len(group) > MAX_ITEMS:
            errors.append((group[MAX_ITEMS].line, "number", _("At most %(n)s days on one form.") % {"n": MAX_ITEMS}))
    return errors


def paper_bookings_import(*, organisation: Organisation, text: str, actor: Actor, now: dt.datetime,
                          mode: str = Basket.Mode.PARTIAL) -> ImportReport:
    """Enter a batch of paper booking forms from a CSV file (one line per day; the lines of one
    form share its series and number). The whole file is checked first and every problem of
    every line is reported (line, column, message); any problem, and nothing is entered. Then the forms are entered in the order they were handed in (original time, then
    series and number), so that they compete for places in that order. Entering the same file
    again changes nothing."""
    _check_now(now)
    lines, errors = _parse_import(organisation, text)
    report = ImportReport()
    if not lines and not errors:
        report.errors.append((1, "", _("The file has no line.")))
        return report
    forms: dict[tuple[str, int], list[ImportLine]] = {}
    for line in lines:
        forms.setdefault((line.series, line.number), []).append(line)
    # Every problem of every line, in the file's order; any problem, and nothing is entered.
    report.errors = sorted(errors + _check_forms(forms, now), key=lambda e: e[0])
    if report.errors:
        return report
    ordered = sorted(forms.items(), key=lambda kv: (kv[1][0].received_at, kv[0][0], kv[0][1]))
    for (series, number), group in ordered:
        result = paper_booking_record(
            organisation=organisation, series=series, number=number, received_at=group[0].received_at,
            household=group[0].household, items=[g.item for g in group], mode=mode, actor=actor, now=now)
        report.forms += 1
        report.created += int(result.created)
        report.already += int(not result.created)
        for item in (result.basket.result or {}).get("items", []):
            setattr(report, item["outcome"], getattr(report, item["outcome"]) + 1)
        report.results.append(result)
    return report
