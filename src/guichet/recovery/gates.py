"""Is an online function open? The status board decides.

An ``OnlineGate`` (configuration) says which procedure of the status board governs an online
function of an organisation — booking, cancellation, payment — for one activity or for all.
The gate reads the availability rows of the ACTIVE incidents (started, not ended at ``now``)
for those procedures on the online channel (``online`` or ``any``):

- a row *suspended*: the function is **closed** for families (web portal and API), with the
  row's explanation and "what to do instead";
- a row *disrupted* (degraded): the function is **restricted**: it stays open with the message
  shown, or closes when the gate says ``when_degraded: close``;
- no row: open. A function with no gate configured is always open.

For an activity, gates naming that activity are used when there are some; otherwise the
organisation's gates for every activity. Several rows: the worst wins. The counter (agents'
screens, agents' API) never asks: it keeps working.

Everything here only reads (a few queries per call); ``now`` is passed in.

The gates configured for an organisation and function (not the status rows: those are read on
every call that has gates) are kept in memory per process for ``GATES_TTL`` seconds, so that the
booking path and the family pages cost no query when nothing is configured. A gate added,
changed or removed takes effect at once in the process that saved it and within ``GATES_TTL``
seconds everywhere else.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from guichet.status import rules as status_rules
from guichet.status.models import Availability

from .models import Function, OnlineGate

OPEN, RESTRICTED, CLOSED = "open", "restricted", "closed"
GATES_TTL = 5.0  # seconds a process keeps an organisation's configured gates (see module doc)
_clock = time.monotonic
_cache: dict[tuple[int, str], tuple[float, list[OnlineGate]]] = {}
_cache_lock = threading.Lock()


def configured_gates(organisation_id: int, function: str) -> list[OnlineGate]:
    """The gates of ``function`` configured for the organisation (cached ``GATES_TTL`` seconds)."""
    key = (int(organisation_id), str(function))
    hit = _cache.get(key)
    if hit is not None and hit[0] > _clock():
        return hit[1]
    found = list(OnlineGate.objects.filter(organisation_id=organisation_id, function=function)
                 .order_by("pk"))
    with _cache_lock:
        _cache[key] = (_clock() + GATES_TTL, found)
    return found


def _clear() -> None:
    with _cache_lock:
        _cache.clear()


def forget_gates(**_kwargs) -> None:
    """Drop the cached gates (every organisation) on any change to ``OnlineGate`` in this
    process: now, and again once the change commits (a read in between may have cached the old)."""
    _clear()
    transaction.on_commit(_clear)
ONLINE_CHANNELS = ("online", "any")


@dataclass
class Gate:
    """The state of one online function for one organisation (and activity)."""

    function: str
    state: str = OPEN  # open, restricted, closed
    rows: list[Availability] = field(default_factory=list)  # the status rows that decided
    activity_name: str = ""
    status_url: str = ""

    @property
    def open(self) -> bool:
        return self.state != CLOSED

    @property
    def closed(self) -> bool:
        return self.state == CLOSED

    @property
    def code(self) -> str:
        return "suspended" if self.closed else ("restricted" if self.state == RESTRICTED else "open")

    @property
    def function_label(self) -> str:
        return str(Function(self.function).label)

    @property
    def explanation(self) -> str:
        return "\n".join(t for t in dict.fromkeys(r.tr("explanation").strip() for r in self.rows) if t)

    @property
    def instead(self) -> str:
        return "\n".join(t for t in dict.fromkeys(r.tr("instead").strip() for r in self.rows) if t)

    @property
    def message(self) -> str:
        """One sentence for people (and the API's ``message``)."""
        what = self.function_label
        if self.activity_name:
            what = _("%(function)s (%(activity)s)") % {"function": what, "activity": self.activity_name}
        if self.closed:
            text = _("%(what)s is suspended for now.") % {"what": what}
        elif self.state == RESTRICTED:
            text = _("%(what)s is disrupted for now.") % {"what": what}
        else:
            return ""
        if self.explanation:
            text = f"{text} {self.explanation}"
        return text

    def as_api(self) -> dict:
        return {"function": self.function, "state": self.code, "instead": self.instead,
                "status_page": self.status_url}


def _status_url(organisation_id: int) -> str:
    from guichet.catalog.models import Organisation

    slug = Organisation.objects.filter(pk=organisation_id).values_list("portal__slug", flat=True).first()
    if not slug:
        return ""
    try:
        return reverse("status:page", args=[slug])
    except NoReverseMatch:  # pragma: no cover - the status app is always installed
        return ""


def _rows(procedure_ids: Iterable[int], now: dt.datetime) -> list[Availability]:
    ids = list(set(procedure_ids))
    if not ids:
        return []
    return list(
        Availability.objects.filter(
            procedure_id__in=ids, channel__in=ONLINE_CHANNELS, incident__started_at__lte=now,
        )
        .filter(Q(incident__ended_at__isnull=True) | Q(incident__ended_at__gt=now))
        .exclude(state=status_rules.NORMAL)
        .select_related("procedure", "incident")
        .order_by("procedure_id", "pk")
    )


def _decide(gates: list[OnlineGate], rows: list[Availability]) -> tuple[str, list[Availability]]:
    """The state from the gates and the status rows of their procedures (pure)."""
    mode = {g.procedure_id: g.when_degraded for g in gates}
    closing, restricting = [], []
    for row in rows:
        if row.procedure_id not in mode:
            continue
        if row.state == status_rules.SUSPENDED or mode[row.procedure_id] == OnlineGate.WhenDegraded.CLOSE:
            closing.append(row)
        elif row.state == status_rules.DEGRADED:
            restricting.append(row)
    if closing:
        return CLOSED, closing
    if restricting:
        return RESTRICTED, restricting
    return OPEN, []


def _applicable(gates: list[OnlineGate], activity_id: int | None) -> list[OnlineGate]:
    if activity_id is not None:
        own = [g for g in gates if g.activity_id == activity_id]
        if own:
            return own
    return [g for g in gates if g.activity_id is None]


def gate(*, organisation_id: int, function: str, now: dt.datetime, activity=None) -> Gate:
    """The state of ``function`` for the organisation (and ``activity``, an Activity or None)."""
    if function not in Function.values:
        raise ValueError(f"unknown online function {function!r}")
    activity_id = getattr(activity, "pk", activity)
    gates = _applicable(configured_gates(organisation_id, function), activity_id)
    if not gates:
        return Gate(function)
    state, rows = _decide(gates, _rows((g.procedure_id for g in gates), now))
    name = activity.tr("name") if hasattr(activity, "tr") else ""
    return Gate(function, state, rows, activity_name=name if state != OPEN else "",
                status_url=_status_url(organisation_id) if state != OPEN else "")


def gates_for_activities(*, organisation_id: int, function: str, activities, now: dt.datetime,
                         gates: list[OnlineGate] | None = None) -> list[Gate]:
    """The gates of several activities at once (one query for the gates, one for the rows);
    only the activities whose function is not open. ``gates``: the function's gates of the
    organisation, if the caller has them already."""
    all_gates = gates if gates is not None else configured_gates(organisation_id, function)
    if not all_gates:
        return []
    activities = list(activities)
    if not activities:
        return []
    rows = _rows({g.procedure_id for g in all_gates}, now)
    out = []
    url = None
    for activity in activities:
        gates = _applicable(all_gates, activity.pk)
        if not gates:
            continue
        state, decided = _decide(gates, rows)
        if state != OPEN:
            url = _status_url(organisation_id) if url is None else url
            out.append(Gate(function, state, decided, activity_name=activity.tr("name"), status_url=url))
    return out


def basket_gate(*, household, items: list[dict], now: dt.datetime, idempotency_key: str = "") -> Gate | None:
    """The first CLOSED booking gate among the activities of a family's basket, or None (the
    basket may be received). Items naming unknown sessions are left to the booking service.
    A retry of a basket already received (same idempotency key) is never stopped: it gets the
    answer its basket got."""
    from guichet.bookings.models import Activity, Basket, Session

    all_gates = configured_gates(household.organisation_id, Function.BOOKING)
    if not all_gates:  # nothing configured: no query on the booking path (cached)
        return None
    key = str(idempotency_key or "").strip()
    if key and Basket.objects.filter(household=household, idempotency_key=key).exists():
        return None

    session_ids = set()
    for item in items or []:
        try:
            session_ids.add(int(item.get("session")))
        except (AttributeError, TypeError, ValueError):
            continue
    activity_ids = set(
        Session.objects.filter(pk__in=session_ids, organisation_id=household.organisation_id)
        .values_list("activity_id", flat=True)
    )
    activities = Activity.objects.filter(pk__in=activity_ids).order_by("position", "pk")
    closed = [g for g in gates_for_activities(organisation_id=household.organisation_id, function=Function.BOOKING,
                                              activities=activities, now=now, gates=all_gates) if g.closed]
    return closed[0] if closed else None


def waitlist_accept_gate(*, entry, now: dt.datetime) -> Gate:
    """Accepting an offered place online books it: the booking gate of the entry's activity.
    Declining stays open (it books nothing and gives the place back). No query when no booking
    gate is configured (cached)."""
    from guichet.bookings.models import Activity

    if not configured_gates(entry.organisation_id, Function.BOOKING):
        return Gate(Function.BOOKING)
    activity = Activity.objects.filter(sessions__waitlist=entry).first() if entry.pk else None
    return gate(organisation_id=entry.organisation_id, function=Function.BOOKING, activity=activity, now=now)


def cancellation_gate(*, booking, now: dt.datetime) -> Gate:
    """The cancellation gate of a booking's activity."""
    from guichet.bookings.models import Activity

    activity = Activity.objects.filter(sessions__bookings=booking).first() if booking.pk else None
    return gate(organisation_id=booking.organisation_id, function=Function.CANCELLATION, activity=activity, now=now)


def payment_gate(*, organisation_id: int, now: dt.datetime) -> Gate:
    return gate(organisation_id=organisation_id, function=Function.PAYMENT, now=now)


def notices(*, organisation_id: int, functions: Iterable[str], now: dt.datetime) -> list[Gate]:
    """Every online function (per activity) that is not open: what a family page shows."""
    from guichet.bookings.models import Activity

    functions = list(functions)
    if not any(configured_gates(organisation_id, f) for f in functions):
        return []  # nothing configured: no query on a family page (cached)
    activities = list(Activity.objects.filter(organisation_id=organisation_id).order_by("position", "pk"))
    out: list[Gate] = []
    for function in functions:
        if function == Function.PAYMENT:
            g = payment_gate(organisation_id=organisation_id, now=now)
            if g.state != OPEN:
                out.append(g)
        else:
            out.extend(gates_for_activities(organisation_id=organisation_id, function=function,
                                            activities=activities, now=now))
    return out
