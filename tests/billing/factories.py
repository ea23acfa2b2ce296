"""Test data for billing: an organisation with activities, units, sessions, households,
children and bookings in their different states (written directly: these are the bookings
module's rows as its services leave them)."""

from __future__ import annotations

import datetime as dt
from itertools import count

from guichet.billing import services
from guichet.billing.config import load_tariffs
from guichet.bookings.models import (
    Activity,
    Attendance,
    Booking,
    Child,
    Household,
    Justification,
    Session,
    Site,
    Unit,
)
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor

UTC = dt.UTC
_seq = count(1)
ACTOR = Actor.cli()
NOW = dt.datetime(2024, 12, 1, 9, 0, tzinfo=UTC)

TARIFFS = """\
format: guichet-billing/1
portal: {portal}
organisation: ville
brackets:
  - valid_from: 2024-01-01
    default: D
    brackets:
      - {{code: A, up_to: 500}}
      - {{code: B, up_to: 900}}
      - {{code: C, up_to: 1400}}
      - {{code: D}}
sibling_reductions:
  - valid_from: 2024-01-01
    ranks: [0%, 10%, 20%]  # 1st, 2nd, 3rd and more
activities:
  - activity: mercredis
    tariffs:
      - valid_from: 2024-01-01
        late_cancellation_penalty: 2.00
        absence_penalty: 1.00
        prices:
          journee: {{A: 5.00, B: 9.00, C: 13.00, D: 17.00, non_resident: 25.00}}
          matin-repas: {{A: 3.00, B: 5.50, C: 8.00, D: 10.00, non_resident: 15.00}}
      - valid_from: 2024-11-01
        prices:
          journee: {{A: 5.50, B: 9.50, C: 14.00, D: 18.00, non_resident: 26.00}}
          matin-repas: {{A: 3.20, B: 5.80, C: 8.40, D: 10.50, non_resident: 16.00}}
  - activity: cantine
    tariffs:
      - valid_from: 2024-01-01
        prices:
          repas: {{A: 1.00, B: 2.50, C: 3.80, D: 4.90, non_resident: 6.50}}
creche:
  - activity: creche
    psu:
      - valid_from: 2024-01-01
        floor: 801.00
        ceiling: 6000.00
        effort_rates: [0.0619%, 0.0516%, 0.0413%, 0.0310%, 0.0310%, 0.0310%, 0.0310%, 0.0206%]
"""


def organisation(slug: str | None = None) -> Organisation:
    slug = slug or f"ville-{next(_seq)}"
    portal = Portal.objects.create(slug=slug, name=slug)
    return Organisation.objects.create(portal=portal, slug="ville", name=f"Ville {slug}")


def activity(org, slug, kind, units: list[str]) -> Activity:
    a = Activity.objects.create(organisation=org, slug=slug, name=slug, kind=kind, parts=["day"],
                                booking_rule="2 days before at 12:00", cancellation_rule="2 days before at 12:00",
                                justification_days=8)
    for i, code in enumerate(units):
        Unit.objects.create(organisation=org, activity=a, code=code, name=code, parts=["day"], position=i)
    return a


def town(slug: str | None = None, *, tariffs: bool = True):
    """An organisation with Wednesdays (journee, matin-repas), catering (repas) and a crèche."""
    org = organisation(slug)
    site = Site.objects.create(organisation=org, slug="centre", name="Centre")
    acts = {
        "mercredis": activity(org, "mercredis", Activity.Kind.LEISURE_WEDNESDAY, ["journee", "matin-repas"]),
        "cantine": activity(org, "cantine", Activity.Kind.CATERING, ["repas"]),
        "creche": activity(org, "creche", Activity.Kind.CRECHE, ["heure"]),
    }
    if tariffs:
        load_tariffs(TARIFFS.format(portal=org.portal.slug), "tariffs.yaml", actor=ACTOR, now=NOW)
    return org, site, acts


def household(org, *, resident=True, children=1, ref=None) -> Household:
    h = Household.objects.create(organisation=org, reference=ref or f"H{next(_seq)}", display_name="Famille",
                                 resident=resident, created_at=NOW)
    for i in range(children):
        Child.objects.create(organisation=org, household=h, first_name=f"Enfant {i}",
                             birth_date=dt.date(2015 + i, 1, 1))
    return h


def session(org, site, act, day: dt.date) -> Session:
    s, _ = Session.objects.get_or_create(organisation=org, activity=act, site=site, date=day)
    return s


def book(child, sess, unit_code="journee", *, status="booked", late=False, present=None, justified_at=None) -> Booking:
    unit = Unit.objects.get(activity_id=sess.activity_id, code=unit_code)
    b = Booking.objects.create(
        organisation_id=child.organisation_id, household_id=child.household_id, child=child, session=sess, unit=unit,
        status=status, booked_at=NOW - dt.timedelta(days=400), late=late, actor_ref="test",
        cancelled_at=(NOW - dt.timedelta(days=300)) if status == "cancelled" else None)
    if present is not None:
        Attendance.objects.create(organisation_id=child.organisation_id, booking=b, present=present,
                                  recorded_at=dt.datetime.combine(sess.date, dt.time(18), tzinfo=UTC), actor_ref="t")
    if justified_at is not None:
        Justification.objects.create(organisation_id=child.organisation_id, booking=b, kind="medical",
                                     received_at=justified_at, actor_ref="t")
    return b


def quotient(h, valid_from, q, resources=None, children=None):
    return services.quotient_record(household=h, valid_from=valid_from, quotient=q, resources_cents=resources,
                                    dependent_children=children, actor=ACTOR, now=NOW)


def run(org, first, last, acts, *, key=None, now=NOW, grouping="run", chunk=1000, execute=True):
    r = services.invoice_run_create(organisation=org, first_month=first, last_month=last, activities=acts,
                                    actor=ACTOR, now=now, idempotency_key=key or f"run-{next(_seq)}",
                                    grouping=grouping)
    if execute:
        r = services.invoice_run_execute(run=r, actor=ACTOR, now=now, chunk_size=chunk)
    return r


def wednesdays(year, month):
    d = dt.date(year, month, 1)
    out = []
    while d.month == month:
        if d.weekday() == 2:
            out.append(d)
        d += dt.timedelta(days=1)
    return out
