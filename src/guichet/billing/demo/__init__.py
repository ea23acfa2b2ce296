"""The billing module's demo data for the two seed towns (loaded by ``guichet demo``).

For each town: the activities the leisure-centre demo lacks (catering, after-school care,
crèche) and a few demo families (``*-activities.yaml``, bookings format), the tariffs
(``*-tariffs.yaml``, demo prices, CNAF crèche scale), family quotients, a crèche contract, the
bookings of the months billing was stopped (with a few absences, late cancellations and
justifications), and deposits taken at the counter meanwhile. Nothing is invoiced: the demo
shows a catch-up to run (see docs/guide-finance.md):

- Saint-Nazaire: billing stopped since March 2024; bookings March to August 2024; deposits by
  cheque and cash in April and May. Catch-up: one run March to August, all months grouped.
- Maisons-Alfort: attack of 24-25 September 2022; bookings September to December 2022. Catch-up
  staged: September + October (leisure, catering), then November + December; crèche September
  to November, then monthly.

Everything goes through the services (bookings' for bookings, billing's for the rest), with the
dates things happened; loading it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

DEMO_DIR = Path(__file__).resolve().parent
PARIS = ZoneInfo("Europe/Paris")


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


TOWNS = {
    "maisons-alfort": {
        "activities": "maisons-alfort-activities.yaml",
        "tariffs": "maisons-alfort-tariffs.yaml",
        "booked_from": dt.date(2022, 9, 1), "booked_to": dt.date(2022, 12, 31), "booked_on": dt.date(2022, 8, 25),
        # household reference -> (quotient, monthly resources in cents or None, dependent children or None)
        "quotients": {"MA-DEMO-001": (820, None, None), "MA-FACT-001": (380, None, None),
                      "MA-FACT-002": (1250, None, None), "MA-FACT-004": (640, 310_000, 2)},
        # (household, child first name, activity slug, unit code, site slug, weekdays or None = every session)
        "plans": [
            ("MA-DEMO-001", "Léa", "mercredis", "journee", "al-centre", None),
            ("MA-DEMO-001", "Noé", "mercredis", "matin-repas", "al-centre", None),
            ("MA-DEMO-001", "Léa", "restauration", "repas", "restaurant-centre", None),
            ("MA-DEMO-001", "Noé", "restauration", "repas", "restaurant-centre", None),
            ("MA-FACT-001", "Jules", "mercredis", "journee", "al-centre", None),
            ("MA-FACT-001", "Emma", "mercredis", "journee", "al-centre", None),
            ("MA-FACT-001", "Jules", "vacances", "journee", "al-centre", None),
            ("MA-FACT-001", "Jules", "restauration", "repas", "restaurant-centre", None),
            ("MA-FACT-001", "Emma", "restauration", "repas", "restaurant-centre", None),
            ("MA-FACT-002", "Louise", "mercredis", "repas-apres-midi", "al-centre", None),
            ("MA-FACT-002", "Louise", "restauration", "repas", "restaurant-centre", None),
            ("MA-FACT-003", "Hugo", "mercredis", "journee", "al-centre", None),
            ("MA-FACT-004", "Tom", "restauration", "repas", "restaurant-centre", None),
        ],
        "contracts": [("MA-FACT-004", "Chloé", "creche", dt.date(2022, 9, 1), "140.00")],
        "deposits": [("MA-FACT-001", dt.date(2022, 11, 14), 6000, "cheque", "demo-ma-deposit-1")],
    },
    "saint-nazaire": {
        "activities": "saint-nazaire-activities.yaml",
        "tariffs": "saint-nazaire-tariffs.yaml",
        "booked_from": dt.date(2024, 3, 1), "booked_to": dt.date(2024, 8, 31), "booked_on": dt.date(2024, 2, 20),
        "quotients": {"SN-DEMO-001": (560, None, None), "SN-FACT-001": (980, None, None),
                      "SN-FACT-003": (1500, 420_000, 1)},
        "plans": [
            ("SN-DEMO-001", "Inès", "restauration", "repas", "ecole-jean-jaures", None),
            ("SN-DEMO-001", "Tom", "restauration", "repas", "ecole-jean-jaures", None),
            ("SN-DEMO-001", "Tom", "periscolaire", "soir", "ecole-jean-jaures", None),
            ("SN-DEMO-001", "Inès", "ete", "journee", "cl-nord", {0, 1, 2}),
            ("SN-FACT-001", "Maël", "restauration", "repas", "ecole-jean-jaures", None),
            ("SN-FACT-001", "Lina", "restauration", "repas", "ecole-jean-jaures", None),
            ("SN-FACT-001", "Lina", "periscolaire", "soir", "ecole-jean-jaures", None),
            ("SN-FACT-002", "Nolan", "restauration", "repas", "ecole-jean-jaures", None),
            ("SN-FACT-002", "Nolan", "ete", "journee", "cl-plage", {3, 4}),
        ],
        "contracts": [("SN-FACT-003", "Inès", "creche", dt.date(2024, 1, 1), "120.00")],
        "deposits": [("SN-FACT-001", dt.date(2024, 4, 12), 15000, "cheque", "demo-sn-deposit-1"),
                     ("SN-FACT-001", dt.date(2024, 6, 7), 10000, "cash", "demo-sn-deposit-2"),
                     ("SN-FACT-002", dt.date(2024, 5, 3), 8000, "cash", "demo-sn-deposit-3"),
                     ("SN-DEMO-001", dt.date(2024, 5, 21), 5000, "cheque", "demo-sn-deposit-4")],
    },
}


def load_billing_demo() -> list[str]:
    """Load the demo data (idempotent) and return one line per thing loaded, for the console."""
    from django.core.management.base import CommandError
    from django.utils import timezone

    from guichet.billing.config import TariffError, load_tariffs
    from guichet.bookings.config import ConfigError, load_config
    from guichet.catalog.models import Organisation
    from guichet.common.actor import Actor

    lines = []
    for portal, town in TOWNS.items():
        org = Organisation.objects.filter(portal__slug=portal, slug="ville").first()
        if org is None:
            continue
        for kind in ("activities", "tariffs"):
            path = DEMO_DIR / town[kind]
            text = path.read_text(encoding="utf-8")
            try:
                if kind == "activities":
                    report = load_config(text, path.name, actor=Actor.cli(), now=timezone.now())
                else:
                    report = load_tariffs(text, path.name, actor=Actor.cli(), now=timezone.now())
            except (ConfigError, TariffError) as e:
                raise CommandError(f"billing demo data {path.name} is invalid:\n{e}", returncode=2) from None
            lines.append(f"billing demo {path.name}: {report}")
        lines.append(f"billing demo {portal}: {_town(org, town)}")
    return lines


def _town(org, town) -> str:
    from guichet.billing import services
    from guichet.billing.models import CrecheContract, HouseholdQuotient, Payment
    from guichet.bookings import services as bookings
    from guichet.bookings.models import Activity, Booking, Household, Session, Unit
    from guichet.common.actor import Actor

    actor = Actor.system("demo")
    households = {h.reference: h for h in Household.objects.filter(organisation=org)}
    children = {(h.reference, c.first_name): c for h in households.values() for c in h.children.all()}
    activities = {a.slug: a for a in Activity.objects.filter(organisation=org)}
    created = {"quotients": 0, "contracts": 0, "bookings": 0, "deposits": 0}
    start = town["booked_from"]
    for ref, (quotient, resources, kids) in town["quotients"].items():
        h = households[ref]
        if not HouseholdQuotient.objects.filter(household=h).exists():
            services.quotient_record(household=h, valid_from=dt.date(start.year - 1, 1, 1), quotient=quotient,
                                     resources_cents=resources, dependent_children=kids, source="caf",
                                     actor=actor, now=_at(town["booked_on"]))
            created["quotients"] += 1
    for ref, first_name, slug, first_month, hours in town["contracts"]:
        h, child = households[ref], children[(ref, first_name)]
        if not CrecheContract.objects.filter(child=child).exists():
            services.creche_contract_create(household=h, child=child, activity=activities[slug],
                                            first_month=first_month, monthly_hours=hours, actor=actor,
                                            now=_at(town["booked_on"]))
            created["contracts"] += 1
    plan_households = [households[p[0]] for p in town["plans"]]
    already = Booking.objects.filter(household__in=plan_households, session__date__gte=start,
                                     session__date__lte=town["booked_to"]).exists()
    if not already:
        n = 0
        for ref, first_name, slug, unit_code, site_slug, weekdays in town["plans"]:
            h, child, activity = households[ref], children[(ref, first_name)], activities[slug]
            unit = Unit.objects.get(activity=activity, code=unit_code)
            sessions = Session.objects.filter(activity=activity, site__slug=site_slug, date__gte=start,
                                              date__lte=town["booked_to"], closed=False).order_by("date")
            for session in sessions:
                if weekdays is not None and session.date.weekday() not in weekdays:
                    continue
                booking = bookings.booking_create_by_agent(
                    household=h, child=child, session=session, unit=unit, actor=actor,
                    now=_at(town["booked_on"]), reason="")
                created["bookings"] += 1
                n += 1
                # a few real-life events: late cancellations, absences, one justified
                if n % 23 == 0:
                    bookings.booking_cancel(booking=booking, actor=actor, now=_at(session.date - dt.timedelta(days=1)),
                                            reason="")
                elif n % 17 == 0:
                    bookings.attendance_record(booking=booking, present=False, actor=actor,
                                               now=_at(session.date, 17))
                    if n % 34 == 0:
                        bookings.justification_record(booking=booking, kind="medical", document=None, actor=actor,
                                                      now=_at(session.date + dt.timedelta(days=2)))
    for ref, day, cents, method, key in town["deposits"]:
        if not Payment.objects.filter(organisation=org, idempotency_key=key).exists():
            services.deposit_record(household=households[ref], amount_cents=cents, method=method, actor=actor,
                                    now=_at(day, 10), idempotency_key=key, reference="")
            created["deposits"] += 1
    return ", ".join(f"{n} {k}" for k, n in created.items())
