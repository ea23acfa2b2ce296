"""Invariants after a rush, read back from the database (never from what the client was told).

- overbooked: parts whose active bookings (or ``booked`` counter) exceed the capacity;
- ledger: ``SessionPart.booked`` must equal the number of active bookings using that part;
- one place a day: no child has two active bookings for the same activity on the same day
  (at two centres), read through the sessions, not the bookings' own copy of activity and date;
- fairness: the baskets are replayed first come, first served in receipt order (``seq`` = pk)
  with the same capacities and modes; an *inversion* is a basket that got fewer places on a
  session than the replay entitles it to while a later basket got a place on that session;
- idempotency: one basket per family (each family sends one key, retried as is);
- answers: what each family was told (booked items) must match its bookings in the ledger.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Invariants:
    parts: int = 0
    capacity: int = 0
    booked: int = 0
    waitlisted: int = 0
    overbooked: int = 0
    ledger_mismatches: int = 0
    booked_twice_same_day: int = 0
    baskets: int = 0
    unanswered: int = 0
    duplicate_baskets: int = 0
    replay_mismatches: int = 0
    inversions: int = 0
    answer_mismatches: int = 0
    refusal_codes: Counter = field(default_factory=Counter)
    receipt_span: float | None = None  # first receipt -> last receipt, seconds (server clock)

    @property
    def ok(self) -> bool:
        return not (self.overbooked or self.ledger_mismatches or self.unanswered or self.duplicate_baskets
                    or self.inversions or self.answer_mismatches or self.booked_twice_same_day)

    def lines(self) -> list[str]:
        return [
            f"places booked           {self.booked} of {self.capacity} ({self.parts} session parts); "
            f"{self.waitlisted} waiting-list entries",
            f"baskets in the ledger   {self.baskets} ({self.unanswered} never answered, "
            f"{self.duplicate_baskets} duplicates of a family's request)",
            f"overbooked sessions     {self.overbooked}",
            f"booked != ledger        {self.ledger_mismatches}",
            f"child twice same day    {self.booked_twice_same_day}",
            f"fairness inversions     {self.inversions} (FCFS replay mismatches: {self.replay_mismatches})",
            f"answers != ledger       {self.answer_mismatches}",
            "refusal/waitlist codes  " + (", ".join(f"{k}: {v}" for k, v in sorted(self.refusal_codes.items()))
                                          or "none"),
        ]


def check(organisation_id: int, told: dict[int, int] | None = None) -> Invariants:
    """``told``: household id -> number of items the family was told are booked (optional)."""
    from django.db.models import Count, Max, Min

    from guichet.bookings import models as m

    inv = Invariants()
    units = {u.pk: set(u.parts) for u in m.Unit.objects.filter(organisation_id=organisation_id)}
    active = defaultdict(int)  # (session, part) -> active bookings
    for row in (m.Booking.objects.filter(organisation_id=organisation_id, status=m.Booking.Status.BOOKED)
                .values("session_id", "unit_id").annotate(n=Count("id"))):
        for part in units[row["unit_id"]]:
            active[(row["session_id"], part)] += row["n"]
    capacity: dict[int, int] = {}
    for p in m.SessionPart.objects.filter(organisation_id=organisation_id):
        inv.parts += 1
        inv.capacity += p.capacity
        n = active.get((p.session_id, p.part), 0)
        inv.booked += n
        if max(n, p.booked) > p.capacity:
            inv.overbooked += 1
        if n != p.booked:
            inv.ledger_mismatches += 1
        capacity[p.session_id] = min(capacity.get(p.session_id, p.capacity), p.capacity)
    inv.booked_twice_same_day = (
        m.Booking.objects.filter(organisation_id=organisation_id, status=m.Booking.Status.BOOKED)
        .values("child_id", "session__activity_id", "session__date").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    inv.waitlisted = m.WaitlistEntry.objects.filter(organisation_id=organisation_id).count()

    baskets = list(m.Basket.objects.filter(organisation_id=organisation_id).order_by("pk")
                   .values("pk", "household_id", "mode", "items", "status", "result"))
    inv.baskets = len(baskets)
    per_household = Counter(b["household_id"] for b in baskets)
    inv.duplicate_baskets = sum(n - 1 for n in per_household.values() if n > 1)
    span = m.Basket.objects.filter(organisation_id=organisation_id).aggregate(
        first=Min("received_at"), last=Max("received_at"))
    if span["first"] and span["last"]:
        inv.receipt_span = (span["last"] - span["first"]).total_seconds()

    got = Counter()  # (basket, session) -> active bookings made by that basket
    for row in (m.Booking.objects.filter(organisation_id=organisation_id, status=m.Booking.Status.BOOKED)
                .values("basket_id", "session_id").annotate(n=Count("id"))):
        got[(row["basket_id"], row["session_id"])] += row["n"]

    # First come, first served replay in receipt order.
    remaining = dict(capacity)
    expected = Counter()
    for b in baskets:
        if b["status"] != m.Basket.Status.DONE:
            inv.unanswered += 1
        need = Counter(int(item["session"]) for item in b["items"])
        if b["mode"] == m.Basket.Mode.ALL_OR_NOTHING:
            grant = dict(need) if all(remaining.get(s, 0) >= n for s, n in need.items()) else {}
        else:
            grant = {s: min(n, remaining.get(s, 0)) for s, n in need.items()}
        for s, n in grant.items():
            remaining[s] -= n
            expected[(b["pk"], s)] = n
        for item in (b["result"] or {}).get("items", []):
            if item.get("outcome") != "booked":
                inv.refusal_codes[f"{item.get('outcome')}/{item.get('code') or '-'}"] += 1

    last_winner: dict[int, int] = {}  # session -> highest basket pk that got a place there
    for (basket, session), n in got.items():
        if n > 0 and basket is not None:
            last_winner[session] = max(last_winner.get(session, 0), basket)
    for key in set(expected) | set(got):
        basket, session = key
        if basket is None:
            continue
        if expected[key] != got[key]:
            inv.replay_mismatches += 1
            if got[key] < expected[key] and last_winner.get(session, 0) > basket:
                inv.inversions += 1

    if told is not None:
        per_hh = Counter()
        for row in (m.Booking.objects.filter(organisation_id=organisation_id, status=m.Booking.Status.BOOKED)
                    .values("household_id").annotate(n=Count("id"))):
            per_hh[row["household_id"]] = row["n"]
        inv.answer_mismatches = sum(1 for hh, n in told.items() if per_hh[hh] != n)
    return inv
