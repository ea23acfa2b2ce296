"""Cross-tenant and object-level refusals of the recovery screens (coming back, paper forms).

Staff of another town, and staff of another organisation of the same page, are refused on
every screen of this organisation; on their own screens, another organisation's family file,
activity or centre is refused as a form error naming the field; families are refused; nothing
changes. Controls show the same forms accepted for this organisation's own agent.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse

from guichet.accounts.models import StaffRole
from guichet.billing.models import Payment
from guichet.bookings.models import Activity, AgentRole, Booking, Guardian, Site, Unit
from guichet.catalog.models import Organisation, Portal
from guichet.recovery.models import PaperForm
from tests.bookings.test_services import BEFORE, World, paris

from .helpers import catalogue, configure_gates

pytestmark = pytest.mark.django_db
NOW = paris(2025, 1, 10, 9, 0)
DAY = dt.date(2025, 1, 15)


def _user(name, org=None, *, agent=False, kinds=()):
    user = get_user_model().objects.create_user(name, f"{name}@example.org", "x" * 12)
    if agent:
        AgentRole.objects.create(organisation=org, user=user)
    for kind in kinds:
        StaffRole.objects.create(user=user, organisation=org, kind=kind, granted_at=BEFORE)
    return user


@pytest.fixture
def town(db):
    w = World(capacity=5)
    configure_gates(w, catalogue(w))
    w.session(day=DAY)
    w.hh, (w.child,) = w.household()
    w.agent = _user("agent", w.org, agent=True, kinds=("counter",))
    # Another organisation on the same page, with its own activity, centre and staff.
    w.neighbour_org = Organisation.objects.create(portal=w.portal, slug="agglo", name="Agglo")
    w.neighbour_activity = Activity.objects.create(
        organisation=w.neighbour_org,
        slug="mercredis",
        name="M",
        kind="leisure_wednesday",
        parts=["morning"],
        booking_rule="sunday before at 23:59",
        cancellation_rule="sunday of previous week at 23:59",
    )
    Unit.objects.create(
        organisation=w.neighbour_org,
        activity=w.neighbour_activity,
        code="journee",
        name="J",
        parts=["morning"],
        position=0,
    )
    w.neighbour_site = Site.objects.create(organisation=w.neighbour_org, slug="centre", name="C")
    w.neighbour = _user(
        "neighbour", w.neighbour_org, agent=True, kinds=("counter", "finance", "it", "admin")
    )
    # Another town.
    other = Organisation.objects.create(
        portal=Portal.objects.create(slug="ailleurs", name="Ailleurs"), slug="ville", name="Ville"
    )
    w.stranger = _user("stranger", other, agent=True, kinds=("counter", "finance", "it", "admin"))
    return w


def booking_form(w, **over):
    return {
        "series": "A",
        "number": "12",
        "received_on": "2025-01-08",
        "received_time": "10:30",
        "household": w.hh.reference,
        "activity": w.activity.pk,
        "site": w.site.pk,
        "children": w.child.first_name,
        "dates": "15/01/2025",
        "unit": "journee",
        "mode": "partial",
        **over,
    }


def deposit_form(w, **over):
    return {
        "series": "R",
        "number": "31",
        "received_on": "2025-01-06",
        "received_time": "16:30",
        "household": w.hh.reference,
        "amount": "45,50",
        "method": "cash",
        **over,
    }


def csv_for(w):
    return (
        "series;number;received_at;household;child;activity;site;date;unit\n"
        f"B;1;2025-01-07 09:00;{w.hh.reference};{w.child.first_name};mercredis;centre;2025-01-15;journee\n"
    )


def posts(w):
    return {
        "paper-booking": booking_form(w),
        "paper-deposit": deposit_form(w),
        "paper-void": {"kind": "booking", "series": "B", "number": "2", "reason": "test"},
        "paper-import": {"text": csv_for(w), "mode": "partial"},
    }


def calls(w, org_slug=None):
    args = [w.portal.slug, org_slug or w.org.slug]
    data = posts(w)
    out = [("get", "coming-back", args, None)]
    for name, body in data.items():
        out += [("get", name, args, None), ("post", name, args, body)]
    return out


def call(client, method, name, args, body):
    url = reverse(f"recovery:{name}", args=args)
    return client.post(url, body) if method == "post" else client.get(url)


def _state():
    return PaperForm.objects.count(), Booking.objects.count(), Payment.objects.count()


def test_staff_of_another_town_or_organisation_and_families_are_refused(client, town):
    parent = _user("parent")
    Guardian.objects.create(organisation=town.org, household=town.hh, user=parent)
    before = _state()
    with time_machine.travel(NOW, tick=False):
        for user, expected in ((town.stranger, 403), (town.neighbour, 403), (parent, 403)):
            client.force_login(user)
            for method, name, args, body in calls(town):
                assert call(client, method, name, args, body).status_code == expected, (
                    user.username,
                    method,
                    name,
                )
        client.force_login(town.stranger)
        assert client.get(reverse("recovery:home", args=[town.portal.slug])).status_code == 403
        # The neighbour's entry leads to their own organisation's screen.
        client.force_login(town.neighbour)
        r = client.get(reverse("recovery:home", args=[town.portal.slug]))
        assert r.status_code == 302 and r["Location"].endswith(f"/{town.neighbour_org.slug}/")
    assert _state() == before


def test_another_organisations_family_activity_or_centre_is_a_form_error(client, town):
    before = _state()
    client.force_login(town.neighbour)
    args = [town.portal.slug, town.neighbour_org.slug]
    with time_machine.travel(NOW, tick=False):
        own = {"activity": town.neighbour_activity.pk, "site": town.neighbour_site.pk}
        for change, field in (
            (own, "id_household"),
            ({"household": "X"}, "id_activity"),
            ({"household": "X"}, "id_site"),
        ):
            r = client.post(
                reverse("recovery:paper-booking", args=args), booking_form(town, **change)
            )
            assert r.status_code == 400, change
            assert f'href="#{field}"' in r.content.decode(), (change, field)
        r = client.post(reverse("recovery:paper-deposit", args=args), deposit_form(town))
        assert r.status_code == 400 and 'href="#id_household"' in r.content.decode()
        r = client.post(
            reverse("recovery:paper-import", args=args), {"text": csv_for(town), "mode": "partial"}
        )
        assert r.status_code == 400
    assert _state() == before
    # Control: this organisation's own agent enters the same forms.
    client.force_login(town.agent)
    with time_machine.travel(NOW, tick=False):
        for method, name, args_, body in calls(town):
            r = call(client, method, name, args_, body)
            assert r.status_code in (200, 302), (method, name, r.status_code)
    assert Booking.objects.filter(household=town.hh).count() == 1 and Payment.objects.count() == 1
