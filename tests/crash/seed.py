"""Seed the private database of the crash test (run in a subprocess with its DATABASE_URL):
``python -m tests.crash.seed`` prints the scenario as JSON on stdout.

One organisation; an activity whose sessions (one "day" part, few places) are all bookable
now; families with one child each and a guardian account with an API token; a counter agent
with an API token; an issued invoice per family (for payments)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guichet.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from guichet.accounts.models import ApiToken, StaffRole
    from guichet.billing.models import Invoice
    from guichet.bookings.models import (
        Activity,
        Child,
        Guardian,
        Household,
        Session,
        SessionPart,
        Site,
        Unit,
    )
    from guichet.catalog.models import Organisation, Portal

    families, sessions_n, capacity = (int(x) for x in sys.argv[1:4])
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    portal = Portal.objects.create(slug="crash", name="Crash")
    org = Organisation.objects.create(portal=portal, slug="ville", name="Ville")
    activity = Activity.objects.create(organisation=org, slug="jours", name="Jours", kind="leisure_holidays",
                                       parts=["day"], booking_rule="same day at 23:59",
                                       cancellation_rule="same day at 23:59")
    Unit.objects.create(organisation=org, activity=activity, code="journee", name="Journée", parts=["day"])
    site = Site.objects.create(organisation=org, slug="centre", name="Centre")
    sessions = []
    for i in range(sessions_n):
        s = Session.objects.create(organisation=org, activity=activity, site=site,
                                   date=today + dt.timedelta(days=10 + i))
        SessionPart.objects.create(organisation=org, session=s, part="day", capacity=capacity)
        sessions.append(s.pk)
    users = get_user_model().objects
    agent = users.create_user("counter", password=None)  # no hashing: API tokens only
    StaffRole.objects.create(user=agent, organisation=org, kind="counter", granted_at=now)
    ApiToken.objects.create(user=agent, name="crash", digest=ApiToken.hash("counter-token"))
    out = {"organisation": org.pk, "sessions": sessions, "counter_token": "counter-token", "families": []}
    for i in range(families):
        hh = Household.objects.create(organisation=org, reference=f"F{i:04d}", display_name=f"F{i}", created_at=now)
        child = Child.objects.create(organisation=org, household=hh, first_name=f"E{i}",
                                     birth_date=dt.date(2016, 1, 1))
        user = users.create_user(f"parent{i}", password=None)
        Guardian.objects.create(organisation=org, household=hh, user=user)
        ApiToken.objects.create(user=user, name="crash", digest=ApiToken.hash(f"parent-token-{i}"))
        invoice = Invoice.objects.create(
            organisation=org, household=hh, kind="invoice", status="final", number=f"FAC-CRASH-{i:06d}",
            first_month=today.replace(day=1), last_month=today.replace(day=1), total_cents=10_000, created_at=now,
            finalised_at=now, issue_date=today, due_date=today + dt.timedelta(days=30))
        out["families"].append({"household": hh.pk, "reference": hh.reference, "child": child.pk,
                                "token": f"parent-token-{i}", "invoice": invoice.number})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
