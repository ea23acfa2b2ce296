"""A waiting-list offer does not run out while online booking is suspended (degraded mode): the
family could not accept it through no fault of its own. The expiry job pauses it; when booking
reopens the offer gets back the time it had left (at least a fresh minimum window, never past
the eve of the day) and the family is told the new time limit. Frozen time throughout."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.utils import translation

from guichet.bookings import services
from guichet.bookings.models import Booking, WaitlistEntry
from guichet.journal.models import Entry
from tests.bookings.test_services import PARENT, WEDNESDAY, item, paris
from tests.recovery import test_gates
from tests.recovery.helpers import set_state

pytestmark = pytest.mark.django_db
world, parent = test_gates.world, test_gates.parent  # a town whose booking is gated by the board

OFFERED_AT = paris(2024, 11, 20, 10, 0)  # offer_hours 48: kept until Friday 22 November 10:00
SUSPENDED = "2024-11-20T12:00:00+01:00"
REOPENED = "2024-11-24T08:00:00+01:00"
SYSTEM = PARENT  # who runs the job does not matter here


@pytest.fixture
def mails(settings, django_capture_on_commit_callbacks):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return django_capture_on_commit_callbacks


def offered(world, household, child, now=OFFERED_AT):
    session = world.session(capacity=1)
    other, (other_child,) = world.household()
    first = world.submit(other, [item(other_child, session)], now=now)
    world.submit(household, [item(child, session)], now=now)
    services.booking_cancel(booking=Booking.objects.get(pk=first.result["items"][0]["booking"]), actor=PARENT,
                            now=now)
    entry = WaitlistEntry.objects.get(child=child)
    assert entry.status == "offered"
    return session, entry


def expire(now) -> int:
    return services.waitlist_expire_offers(now=now, actor=SYSTEM).expired


def test_an_offer_is_kept_while_booking_is_suspended_and_gets_its_time_back(world, parent, mails):
    hh, child, _client, _auth = parent
    session, entry = offered(world, hh, child)
    assert entry.offer_expires_at == paris(2024, 11, 22, 10, 0)
    set_state(world, "inscriptions", "suspended", started=SUSPENDED, ended=REOPENED)
    # Thursday 9:00, booking suspended since Wednesday noon: the job pauses the offer.
    assert expire(paris(2024, 11, 21, 9, 0)) == 0
    entry.refresh_from_db()
    assert entry.status == "offered" and entry.offer_paused_at == paris(2024, 11, 21, 9, 0)
    # Saturday: long past its time limit, still suspended: kept, the place still held.
    assert expire(paris(2024, 11, 23, 10, 0)) == 0
    entry.refresh_from_db()
    assert entry.status == "offered" and entry.offer_paused_at == paris(2024, 11, 21, 9, 0)
    assert list(session.parts.values_list("booked", flat=True)) == [1, 1, 1]
    # Sunday 9:00, booking reopened at 8:00: the 25 hours it had left when paused are given back.
    with mails(execute=True):
        assert expire(paris(2024, 11, 24, 9, 0)) == 0
    entry.refresh_from_db()
    assert entry.offer_paused_at is None
    assert entry.offer_expires_at == paris(2024, 11, 25, 10, 0)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [hh.email]
    assert "lundi 25 novembre 2024 à 10 h" in mail.outbox[0].body  # the new time limit
    ops = list(Entry.objects.filter(operation__startswith="bookings.waitlist.offer_").values_list(
        "operation", flat=True).order_by("pk"))
    assert ops == ["bookings.waitlist.offer_pause", "bookings.waitlist.offer_resume"]
    # Then it runs out like any offer.
    assert expire(paris(2024, 11, 25, 9, 59)) == 0
    assert expire(paris(2024, 11, 25, 10, 1)) == 1
    entry.refresh_from_db()
    assert entry.status == "expired"
    assert list(session.parts.values_list("booked", flat=True)) == [0, 0, 0]


def test_without_a_suspension_the_offer_expires_on_time(world, parent):
    hh, child, _client, _auth = parent
    _session, entry = offered(world, hh, child)
    assert expire(paris(2024, 11, 22, 9, 59)) == 0
    assert expire(paris(2024, 11, 22, 10, 1)) == 1
    entry.refresh_from_db()
    assert entry.status == "expired" and entry.offer_paused_at is None


def test_the_family_page_says_the_offer_is_kept_while_suspended(world, parent):
    hh, child, client, _auth = parent
    _session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "suspended", started=SUSPENDED, ended=REOPENED)
    with translation.override("fr"):
        kept = translation.gettext("Your offer is kept while bookings are suspended.")
    with time_machine.travel(paris(2024, 11, 23, 10, 0), tick=False):
        expire(paris(2024, 11, 23, 10, 0))
        home = client.get(f"/{world.portal.slug}/famille/").content.decode()
        week = client.get(f"/{world.portal.slug}/famille/calendrier/?semaine={WEDNESDAY:%Y-%m-%d}").content.decode()
    for page in (home, week):
        assert kept in page
        assert f"/liste-attente/{entry.pk}/accepter/" not in page  # suspended: no accept button
        assert f"/liste-attente/{entry.pk}/refuser/" in page
    # Reopened, before the job's next run: the page already shows the time the offer will get.
    with time_machine.travel(paris(2024, 11, 24, 8, 30), tick=False):
        home = client.get(f"/{world.portal.slug}/famille/").content.decode()
    assert kept not in home and "lundi 25 novembre à 8 h 30" in home
    assert f"/liste-attente/{entry.pk}/accepter/" in home


def test_once_reopened_the_family_can_accept_before_the_job_runs(world, parent):
    hh, child, _client, _auth = parent
    _session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "suspended", started=SUSPENDED, ended=REOPENED)
    expire(paris(2024, 11, 21, 9, 0))
    booking = services.waitlist_accept(entry=entry, actor=PARENT, now=paris(2024, 11, 24, 8, 5))
    assert booking.status == "booked"


def test_an_offer_made_while_suspended_is_paused_from_the_start_and_its_mail_says_so(world, parent, mails):
    hh, child, _client, _auth = parent
    set_state(world, "inscriptions", "suspended", started=SUSPENDED, ended=REOPENED)
    with mails(execute=True):
        _session, entry = offered(world, hh, child, now=paris(2024, 11, 21, 15, 0))
    assert entry.offer_paused_at == paris(2024, 11, 21, 15, 0)
    offer_mail = mail.outbox[-1]  # after the two requests' confirmations
    assert offer_mail.subject.startswith(("Une place", "A place"))
    # No time limit that would run out while the family cannot answer: "at least 24 hours" instead.
    assert "24" in offer_mail.body and "2024 à" not in offer_mail.body
    # Reopened on Sunday 8:00, job at 8:05: a full 48 hours again (it had them all when paused).
    expire(paris(2024, 11, 24, 8, 5))
    entry.refresh_from_db()
    assert entry.offer_expires_at == paris(2024, 11, 26, 8, 5) and entry.offer_paused_at is None


def test_a_suspension_that_lasts_past_the_eve_of_the_day_ends_the_offer(world, parent):
    hh, child, _client, _auth = parent
    session, entry = offered(world, hh, child)
    set_state(world, "inscriptions", "suspended", started=SUSPENDED)  # never reopened
    assert expire(paris(2024, 11, 21, 9, 0)) == 0
    assert expire(paris(2024, 12, 3, 23, 59)) == 0  # the eve: still kept
    assert expire(paris(2024, 12, 4, 0, 0)) == 1  # the day itself: the counter books now
    entry.refresh_from_db()
    assert entry.status == "expired"
    assert list(session.parts.values_list("booked", flat=True)) == [0, 0, 0]


H = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("expires_at", "paused_at", "now", "offer_hours", "expected"),
    [
        # The time left when paused (30 h) is given back from the reopening.
        (paris(2024, 11, 22, 10, 0), paris(2024, 11, 21, 4, 0), paris(2024, 11, 25, 8, 0), 48,
         paris(2024, 11, 26, 14, 0)),
        # Only 2 h were left (or none: paused after its time had run out): at least 24 h.
        (paris(2024, 11, 22, 10, 0), paris(2024, 11, 22, 8, 0), paris(2024, 11, 25, 8, 0), 48,
         paris(2024, 11, 26, 8, 0)),
        (paris(2024, 11, 22, 10, 0), paris(2024, 11, 22, 11, 0), paris(2024, 11, 25, 8, 0), 48,
         paris(2024, 11, 26, 8, 0)),
        # An activity that gives 12 h: the fresh window is 12 h.
        (paris(2024, 11, 22, 10, 0), paris(2024, 11, 22, 9, 0), paris(2024, 11, 25, 8, 0), 12,
         paris(2024, 11, 25, 20, 0)),
        # Never past the eve of the session (Tuesday 3 December 23:59:59).
        (paris(2024, 11, 30, 10, 0), paris(2024, 11, 28, 10, 0), paris(2024, 12, 3, 12, 0), 48,
         paris(2024, 12, 3, 23, 59, 59)),
        # Reopened on the day itself: nothing left to offer.
        (paris(2024, 11, 30, 10, 0), paris(2024, 11, 28, 10, 0), paris(2024, 12, 4, 7, 0), 48, None),
    ],
)
def test_resumed_expiry(expires_at, paused_at, now, offer_hours, expected):
    assert services.offer_resumed_expiry(expires_at=expires_at, paused_at=paused_at, now=now,
                                         session_date=WEDNESDAY, offer_hours=offer_hours) == expected
