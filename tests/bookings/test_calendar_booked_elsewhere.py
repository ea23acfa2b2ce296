"""One place a day on the family's calendar (ADR 12): a child booked at centre A is not invited
to book centre B the same day. B says, in words, where the child is booked and has no booking
menu; a waiting list or an offer at B is kept but says so and cannot be accepted from the page.
The calendar still costs the same number of queries however many days are concerned."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from guichet.bookings import services
from guichet.bookings.models import Booking, Site, WaitlistEntry
from tests.bookings.test_services import AGENT, BEFORE, PARENT, WEDNESDAY, World, item

from .test_calendar_month import cell as grid_cell
from .test_views_family import Family

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    w = World(capacity=2)
    w.site.name = "Centre Jules Verne"
    w.site.save()
    w.site2 = Site.objects.create(organisation=w.org, slug="centre-2", name="Centre Prévert")
    return w


@pytest.fixture
def family(world, client):
    return Family(world, client, children=2)


def week(family, day=WEDNESDAY) -> str:
    with time_machine.travel(BEFORE, tick=False), translation.override("fr"):
        r = family.client.get(family.url("calendrier/") + f"?semaine={day:%Y-%m-%d}")
    assert r.status_code == 200
    return r.content.decode()


def card(html: str, child, session) -> str:
    """The card of ``session`` in ``child``'s section of the week page."""
    section = html[html.index(f'id="h-cal-{child.pk}"'):]
    section = section[:section.index("</section>")]
    cards = re.findall(r'<li class="fam-cell fam-cell--.*?</li>', section, flags=re.S)
    found = [c for c in cards if session.site.name in c.split("</p>")[0]]
    assert len(found) == 1, cards
    return found[0]


def book_at(world, family, child, session):
    return world.submit(family.household, [item(child, session)])


def test_a_centre_is_shown_booked_elsewhere_with_no_booking_menu(world, family):
    a, b = world.session(), world.session(site=world.site2)
    first, second = family.children
    book_at(world, family, first, a)
    html = week(family)
    other = card(html, first, b)
    # In words (not colour only), naming the centre where the child is booked; nothing to choose.
    assert "fam-cell--booked_elsewhere" in other
    assert "Centre Jules Verne" in other
    with translation.override("fr"):
        assert translation.gettext("Already booked this day: %(site)s") % {"site": "Centre Jules Verne"} in other
    assert f'name="item-{first.pk}-{b.pk}"' not in html
    assert "<select" not in other
    # The booked centre still offers its cancel link; the brother or sister may still book B.
    assert "fam-cell--booked" in card(html, first, a)
    assert f'name="item-{second.pk}-{b.pk}"' in html
    assert f'name="item-{second.pk}-{a.pk}"' in html


def test_another_day_or_another_activity_stays_bookable(world, family):
    a = world.session()
    next_week = world.session(day=WEDNESDAY + dt.timedelta(days=7), site=world.site2)
    first = family.children[0]
    book_at(world, family, first, a)
    html = week(family, next_week.date)
    assert f'name="item-{first.pk}-{next_week.pk}"' in html
    assert "booked_elsewhere" not in html


def test_a_full_or_closed_centre_also_says_where_the_child_is_booked(world, family):
    a = world.session()
    full = world.session(site=world.site2, capacity=0)
    first = family.children[0]
    book_at(world, family, first, a)
    other = card(week(family), first, full)
    assert "fam-cell--booked_elsewhere" in other and "Centre Jules Verne" in other
    assert "<select" not in other


def test_an_offer_at_the_other_centre_says_why_it_cannot_be_accepted_and_can_be_declined(world, family):
    a = world.session(capacity=1)
    b = world.session(site=world.site2)
    first = family.children[0]
    h0, (c0,) = world.household()
    taken = world.submit(h0, [item(c0, a)])
    book_at(world, family, first, a)  # full: waiting list at A
    services.booking_create_by_agent(household=family.household, child=first, session=b, unit="journee",
                                     actor=AGENT, now=BEFORE, reason="")
    html = week(family)
    waiting = card(html, first, a)
    assert "fam-cell--waitlisted" in waiting and "Centre Prévert" in waiting
    services.booking_cancel(booking=Booking.objects.get(pk=taken.result["items"][0]["booking"]), actor=PARENT,
                            now=BEFORE)
    entry = WaitlistEntry.objects.get(child=first, session=a, status="offered")
    offered = card(week(family), first, a)
    assert "fam-cell--offered" in offered and "Centre Prévert" in offered
    assert f"/liste-attente/{entry.pk}/accepter/" not in offered
    assert f"/liste-attente/{entry.pk}/refuser/" in offered  # declining stays possible


def test_the_month_grid_names_the_centre_for_screen_readers(world, family):
    a, _b = world.session(), world.session(site=world.site2)
    first = family.children[0]
    book_at(world, family, first, a)
    with time_machine.travel(BEFORE, tick=False), translation.override("fr"):
        html = family.client.get(family.url("calendrier/mois/") + "?mois=2024-12").content.decode()
        words = translation.gettext("Booked: %(site)s") % {"site": "Centre Jules Verne"}
    day = grid_cell(html, WEDNESDAY, first)
    assert "fam-month__day--booked" in day and words in day


def _calendar_queries(family, month: str) -> int:
    with time_machine.travel(BEFORE, tick=False), CaptureQueriesContext(connection) as ctx:
        assert family.client.get(family.url("calendrier/") + f"?mois={month}").status_code == 200
    return len(ctx.captured_queries)


def test_the_calendar_costs_the_same_queries_however_many_days_are_booked_elsewhere(world, family):
    first, second = family.children
    days = [WEDNESDAY + dt.timedelta(days=7 * i) for i in range(4)]  # 4 to 25 December 2024
    pairs = [(world.session(day=d), world.session(day=d, site=world.site2)) for d in days]
    book_at(world, family, first, pairs[0][0])
    _calendar_queries(family, "2024-12")  # warms the per-process caches (gates, site settings)
    one = _calendar_queries(family, "2024-12")
    for a, _b in pairs[1:]:
        book_at(world, family, first, a)
        book_at(world, family, second, a)
    many = _calendar_queries(family, "2024-12")
    assert one == many
    with time_machine.travel(BEFORE, tick=False):
        html = family.client.get(family.url("calendrier/") + "?mois=2024-12").content.decode()
    assert html.count('class="fam-cell fam-cell--booked_elsewhere"') == 4 + 3  # 4 days, 3 of the second child
