"""Read-only questions for coming back after an outage: the paper numbering (gaps, duplicates,
forms entered out of order), what was recorded while degraded, and what must be caught up
(invoices not issued, debits not collected, requests to renew). A fixed number of queries each."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.apps import apps
from django.db.models import Count, Min, Q, Sum

from guichet.bookings.models import Activity, Booking, Justification
from guichet.catalog.models import Organisation
from guichet.status.models import Advisory, Incident

from . import gates as gates_mod
from .models import OnlineGate, PaperForm

PARIS = ZoneInfo("Europe/Paris")
MAX_GAP_NUMBERS = 200  # a gap longer than this is shown as a range only


# --- numbering ------------------------------------------------------------------------------------


@dataclass
class SeriesReport:
    kind: str
    series: str
    first: int
    last: int
    entered: int  # forms entered (copies included)
    void: list[int]
    gaps: list[tuple[int, int]]  # missing number ranges (inclusive), neither entered nor void
    duplicates: list[tuple[int, int]]  # (number, how many forms carry it)

    @property
    def missing(self) -> int:
        return sum(b - a + 1 for a, b in self.gaps)

    @property
    def kind_label(self) -> str:
        return str(PaperForm.Kind(self.kind).label)


def gaps_between(present: set[int], first: int, last: int) -> list[tuple[int, int]]:
    """The missing ranges of ``first..last`` given the numbers present (pure)."""
    out: list[tuple[int, int]] = []
    start = None
    for n in range(first, last + 1):
        if n in present:
            if start is not None:
                out.append((start, n - 1))
                start = None
        elif start is None:
            start = n
    if start is not None:
        out.append((start, last))
    return out


def numbering(organisation: Organisation, kind: str | None = None) -> list[SeriesReport]:
    """Per form book (kind and series): the numbers from the first to the last entered, the
    gaps (neither entered nor declared void: still to enter, or lost) and the duplicates."""
    qs = PaperForm.objects.filter(organisation=organisation)
    if kind:
        qs = qs.filter(kind=kind)
    rows = defaultdict(list)
    for k, series, number, state in qs.values_list("kind", "series", "number", "state").order_by(
            "kind", "series", "number"):
        rows[(k, series)].append((number, state))
    out = []
    for (k, series), items in rows.items():
        numbers = [n for n, _s in items]
        first, last = min(numbers), max(numbers)
        counts = defaultdict(int)
        for n, state in items:
            if state == PaperForm.State.ENTERED:
                counts[n] += 1
        out.append(SeriesReport(
            kind=k, series=series, first=first, last=last, entered=sum(counts.values()),
            void=sorted({n for n, s in items if s == PaperForm.State.VOID}),
            gaps=gaps_between(set(numbers), first, last),
            duplicates=sorted((n, c) for n, c in counts.items() if c > 1),
        ))
    return out


@dataclass
class LateEntry:
    form: PaperForm
    overtaken_by: int  # forms handed in AFTER it but entered BEFORE it


def entered_out_of_order(organisation: Organisation) -> list[LateEntry]:
    """Paper booking forms entered after forms handed in later than them: they competed for
    places after those (an answer given is never taken back). Worth a look by an agent."""
    forms = list(PaperForm.objects.filter(organisation=organisation, kind=PaperForm.Kind.BOOKING,
                                          state=PaperForm.State.ENTERED).order_by("entered_at", "pk"))
    out = []
    for i, form in enumerate(forms):
        n = sum(1 for other in forms[:i] if other.received_at > form.received_at and other.entered_at < form.entered_at)
        if n:
            out.append(LateEntry(form, n))
    return out


# --- the degraded period and what was recorded ---------------------------------------------------


@dataclass
class Period:
    start: dt.datetime
    end: dt.datetime | None  # None: still going on
    incidents: list[Incident]


def degraded_period(organisation: Organisation, now: dt.datetime, days: int = 365) -> Period | None:
    """The span of the organisation's incidents active now or ended in the last ``days``."""
    incidents = list(
        Incident.objects.filter(organisation=organisation, started_at__lte=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=now - dt.timedelta(days=days)))
        .order_by("started_at")
    )
    if not incidents:
        return None
    ongoing = any(i.ended_at is None or i.ended_at > now for i in incidents)
    end = None if ongoing else max(i.ended_at for i in incidents)
    return Period(min(i.started_at for i in incidents), end, incidents)


@dataclass
class Recorded:
    bookings_by_channel: dict[str, int] = field(default_factory=dict)
    cancellations_by_agents: int = 0
    paper_forms: dict[str, int] = field(default_factory=dict)  # kind -> forms entered
    deposits: int = 0
    deposits_cents: int = 0
    paper_deposits: int = 0

    def _channels(self, *names: str) -> int:
        return sum(n for c, n in self.bookings_by_channel.items() if c in names)

    @property
    def at_counter(self) -> int:
        return self._channels("agent")

    @property
    def from_paper(self) -> int:
        return self._channels("paper")

    @property
    def online(self) -> int:
        return self._channels("portal", "api")

    @property
    def other(self) -> int:
        """Waiting-list offers accepted, imports, the demo..."""
        return sum(self.bookings_by_channel.values()) - self.at_counter - self.from_paper - self.online


def recorded_between(organisation: Organisation, start: dt.datetime, end: dt.datetime) -> Recorded:
    """What was recorded with a date in [start, end]: bookings by channel (counter, paper...),
    cancellations at the counter, paper forms, deposits."""
    rec = Recorded()
    rec.bookings_by_channel = dict(
        Booking.objects.filter(organisation=organisation, booked_at__gte=start, booked_at__lte=end)
        .values("channel").annotate(n=Count("pk")).values_list("channel", "n"))
    rec.cancellations_by_agents = Booking.objects.filter(
        organisation=organisation, cancelled_at__gte=start, cancelled_at__lte=end,
        status=Booking.Status.CANCELLED).exclude(actor_ref__startswith="system").count()
    rec.paper_forms = dict(
        PaperForm.objects.filter(organisation=organisation, state=PaperForm.State.ENTERED,
                                 received_at__gte=start, received_at__lte=end)
        .values("kind").annotate(n=Count("pk")).values_list("kind", "n"))
    if apps.is_installed("guichet.billing"):
        from guichet.billing.models import Payment

        deposits = Payment.objects.filter(organisation=organisation, kind=Payment.Kind.DEPOSIT,
                                          received_at__gte=start, received_at__lte=end)
        agg = deposits.aggregate(n=Count("pk"), s=Sum("amount_cents"))
        rec.deposits, rec.deposits_cents = agg["n"] or 0, agg["s"] or 0
        rec.paper_deposits = deposits.filter(idempotency_key__startswith="paper-form:").count()
    return rec


# --- to catch up -----------------------------------------------------------------------------------


@dataclass
class MonthToInvoice:
    month: dt.date
    items: int  # billable days on no invoice yet
    households: int
    drafted: int = 0  # billable days on draft invoices of a run not finalised (not issued either)


def justified_in_time(*, session_date: dt.date, justification_days: int, received_at: dt.datetime) -> bool:
    """The bookings rule the invoice run applies: a medical certificate or serious-event
    attestation counts when received by the end of the session day + the activity's
    justification days, Paris time; such a day is never billed."""
    last = session_date + dt.timedelta(days=justification_days)
    return received_at <= dt.datetime(last.year, last.month, last.day, 23, 59, 59, tzinfo=PARIS)


def months_not_invoiced(organisation: Organisation, today: dt.date) -> list[MonthToInvoice]:
    """Months before the current one with days to bill, counted like the invoice run counts them:
    bookings kept (or cancelled late) on days not closed, of activities billed by the day (crèche
    contracts are billed by the month, not counted here), not justified in time. ``items``: on no
    invoice yet; ``drafted``: on a draft invoice not issued yet. What a run leaves unbilled (no
    tariff, justification window still open) stays in ``items`` and is in that run's anomalies."""
    if not apps.is_installed("guichet.billing"):
        return []
    from guichet.billing.models import BilledItem, Invoice

    first_of_month = today.replace(day=1)
    billed = BilledItem.objects.filter(organisation=organisation)
    candidates = (
        Booking.objects.filter(organisation=organisation, session__date__lt=first_of_month, session__closed=False)
        .exclude(session__activity__kind=Activity.Kind.CRECHE)
        .filter(Q(status=Booking.Status.BOOKED) | Q(status=Booking.Status.CANCELLED, late=True))
    )
    rows = list(
        candidates.exclude(pk__in=billed.values("booking_id")).values_list(
            "pk", "session__date", "household_id", "status", "attendance__present",
            "session__activity__justification_days")
    )
    # Only a late cancellation or an absence can be justified (as in the run).
    excusable = {pk: (day, n) for pk, day, _h, st, present, n in rows if st != Booking.Status.BOOKED or present is False}
    justified = {
        booking_id
        for booking_id, received_at in Justification.objects.filter(booking_id__in=list(excusable))
        .values("booking_id").annotate(first=Min("received_at")).values_list("booking_id", "first")
        if justified_in_time(session_date=excusable[booking_id][0], justification_days=excusable[booking_id][1],
                             received_at=received_at)
    }
    months: dict[dt.date, list] = defaultdict(lambda: [0, set(), 0])
    for pk, day, household, _st, _present, _n in rows:
        if pk in justified:
            continue
        m = months[day.replace(day=1)]
        m[0] += 1
        m[1].add(household)
    drafts = candidates.filter(
        pk__in=billed.filter(invoice__status=Invoice.Status.DRAFT).values("booking_id")
    ).values_list("session__date", flat=True)
    for day in drafts:
        months[day.replace(day=1)][2] += 1
    return [MonthToInvoice(m, n, len(h), d) for m, (n, h, d) in sorted(months.items())]


@dataclass
class DebitsToCollect:
    not_collected: int = 0
    not_collected_cents: int = 0
    overdue_planned: int = 0  # planned, due date passed, not collected by any run
    overdue_planned_cents: int = 0
    oldest_due: dt.date | None = None
    available: bool = False  # the water module is installed


def debits_not_collected(organisation: Organisation, today: dt.date) -> DebitsToCollect:
    """Water instalments marked "not collected" during the outage (settled at the annual
    regularisation) and planned instalments whose due date passed without a debit run."""
    out = DebitsToCollect()
    if not apps.is_installed("guichet.water"):
        return out
    from guichet.water.models import Instalment

    out.available = True
    base = Instalment.objects.filter(organisation=organisation)
    a = base.filter(state=Instalment.State.NOT_COLLECTED).aggregate(n=Count("pk"), s=Sum("amount"),
                                                                     d=Min("due_date"))
    b = base.filter(state=Instalment.State.PLANNED, due_date__lt=today).aggregate(
        n=Count("pk"), s=Sum("amount"), d=Min("due_date"))
    out.not_collected, out.not_collected_cents = a["n"] or 0, a["s"] or 0
    out.overdue_planned, out.overdue_planned_cents = b["n"] or 0, b["s"] or 0
    out.oldest_due = min((d for d in (a["d"], b["d"]) if d), default=None)
    return out


def renew_advisories(organisation: Organisation, now: dt.datetime) -> list[Advisory]:
    """Published "requests to renew" notices (e-mails or forms lost during the outage)."""
    return list(Advisory.objects.filter(organisation=organisation, kind=Advisory.Kind.RENEW_REQUESTS,
                                        published_at__lte=now)
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).order_by("-published_at"))


# --- gates -------------------------------------------------------------------------------------------


@dataclass
class GateRow:
    gate: OnlineGate
    state: gates_mod.Gate


def gate_rows(organisation: Organisation, now: dt.datetime) -> list[GateRow]:
    """Every configured gate of the organisation with the state of its function now."""
    out = []
    for g in OnlineGate.objects.filter(organisation=organisation).select_related(
            "activity", "procedure__service").order_by("function", "activity__position", "pk"):
        state = gates_mod.gate(organisation_id=organisation.pk, function=g.function, activity=g.activity, now=now)
        out.append(GateRow(g, state))
    return out


# --- the whole screen ---------------------------------------------------------------------------------


@dataclass
class ComingBack:
    organisation: Organisation
    now: dt.datetime
    period: Period | None
    recorded: Recorded | None
    gates: list[GateRow]
    numbering: list[SeriesReport]
    late_entries: list[LateEntry]
    months: list[MonthToInvoice]
    debits: DebitsToCollect
    renew: list[Advisory]

    @property
    def closed_gates(self) -> list[GateRow]:
        return [g for g in self.gates if g.state.state != gates_mod.OPEN]

    @property
    def booking_closed(self) -> bool:
        return any(g.gate.function == "booking" and g.state.closed for g in self.gates)

    @property
    def gaps(self) -> int:
        return sum(s.missing for s in self.numbering)

    @property
    def duplicates(self) -> int:
        return sum(len(s.duplicates) for s in self.numbering)


def coming_back(organisation: Organisation, now: dt.datetime) -> ComingBack:
    today = now.astimezone(PARIS).date()
    period = degraded_period(organisation, now)
    recorded = recorded_between(organisation, period.start, period.end or now) if period else None
    return ComingBack(
        organisation=organisation, now=now, period=period, recorded=recorded, gates=gate_rows(organisation, now),
        numbering=numbering(organisation), late_entries=entered_out_of_order(organisation),
        months=months_not_invoiced(organisation, today), debits=debits_not_collected(organisation, today),
        renew=renew_advisories(organisation, now),
    )
