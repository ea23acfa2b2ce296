"""A place freed for a waiting family: how long it is kept (never past the eve of the day) and the
e-mail the family reads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import translation

from guichet.bookings import services
from guichet.bookings.deadlines import format_deadline
from guichet.bookings.models import WaitlistEntry
from guichet.bookings.tasks import send_waitlist_offer

from .test_services import PARENT, WEDNESDAY, World, _book, assert_ledger_consistent, item, paris

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return World()


def _waiting_then_freed(world, cancel_at):
    """One place, booked; a second family waits; the place is freed at ``cancel_at``."""
    s = world.session(capacity=1)
    booking = _book(world, s)
    household, (child,) = world.household()
    world.submit(household, [item(child, s)])
    services.booking_cancel(booking=booking, actor=PARENT, now=cancel_at)
    return s, household, child, WaitlistEntry.objects.get(child=child, session=s)


def test_an_offer_made_well_ahead_is_kept_offer_hours(world):
    # Freed on Thursday 21 November, 9:00; the session is Wednesday 4 December: 48 hours fit.
    _s, _h, _c, entry = _waiting_then_freed(world, paris(2024, 11, 21, 9, 0))
    assert entry.status == "offered"
    assert entry.offer_expires_at == paris(2024, 11, 23, 9, 0)


def test_an_offer_never_outlives_the_eve_of_the_session(world):
    # Freed on Monday 2 December at 10:00 for Wednesday 4 December: 48 hours would end on the
    # day itself at 10:00; the offer ends on the eve, Tuesday 3 December at 23:59:59 (Paris).
    s, _h, child, entry = _waiting_then_freed(world, paris(2024, 12, 2, 10, 0))
    assert entry.status == "offered"
    assert entry.offer_expires_at == paris(2024, 12, 3, 23, 59, 59)
    assert entry.offer_expires_at < paris(WEDNESDAY.year, WEDNESDAY.month, WEDNESDAY.day)
    # Accepting on the day itself is too late; the expiry job then gives the place back.
    with pytest.raises(services.BookingError) as late:
        services.waitlist_accept(entry=entry, actor=PARENT, now=paris(2024, 12, 4, 7, 30))
    assert late.value.code == "offer_expired"
    assert services.waitlist_expire_offers(now=paris(2024, 12, 4, 0, 5), actor=PARENT).expired == 1
    assert WaitlistEntry.objects.get(pk=entry.pk).status == "expired"
    assert s.parts.get(part="morning").booked == 0  # nobody left to offer it to, and not on the day
    assert_ledger_consistent()


def test_no_offer_on_the_day_itself_the_place_stays_free_for_an_agent(world):
    s, _h, _c, entry = _waiting_then_freed(world, paris(2024, 12, 4, 8, 0))
    assert entry.status == "waiting" and entry.offer_expires_at is None
    assert services.waitlist_offer_next(session=s, actor=PARENT, now=paris(2024, 12, 4, 8, 5)) is None
    assert s.parts.get(part="morning").booked == 0
    assert_ledger_consistent()


def test_the_offer_email_says_which_day_until_when_in_french_and_where_to_answer(world, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.GUICHET_PUBLIC_URL = "https://famille.ville.example"
    s, household, child, entry = _waiting_then_freed(world, paris(2024, 12, 2, 10, 0))
    assert send_waitlist_offer.call(entry.pk) is True
    (message,) = mail.outbox
    assert message.to == [household.email]
    assert child.first_name in message.subject and "mercredi 4 décembre 2024" in message.subject
    body = message.body
    for fact in (child.first_name, s.activity.name, s.site.name, "mercredi 4 décembre 2024", "journee"):
        assert fact in body
    # The deadline to answer, as a parent reads it (the eve of the day, not a timestamp).
    with translation.override("fr"):
        until = format_deadline(entry.offer_expires_at, with_year=True)
    assert until == "mardi 3 décembre 2024 à 23 h 59" and until in body
    portal = world.org.portal.slug
    assert f"https://famille.ville.example/{portal}/famille/#offre-{entry.pk}" in body
    assert f"https://famille.ville.example/{portal}/famille/calendrier/" in body
    # The link leads to the offer with its two buttons (a GET never answers for the family).
    world_user = _guardian_client(world, household)
    page = world_user.get(f"/{portal}/famille/")
    html = page.content.decode()
    assert f'id="offre-{entry.pk}"' in html and f"/liste-attente/{entry.pk}/accepter/" in html


def test_no_offer_email_once_the_offer_is_answered(world, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _s, _h, _c, entry = _waiting_then_freed(world, paris(2024, 11, 21, 9, 0))
    services.waitlist_decline(entry=entry, actor=PARENT, now=paris(2024, 11, 21, 10, 0))
    assert send_waitlist_offer.call(entry.pk) is False
    assert mail.outbox == []


def _guardian_client(world, household):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from guichet.bookings.models import Guardian

    user = get_user_model().objects.create_user(f"parent-{household.pk}", password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=household, user=user)
    client = Client()
    client.force_login(user)
    return client


def test_offer_expiry_is_a_pure_rule(world):
    s = world.session()
    assert services.offer_expiry(s, paris(2024, 11, 1, 12, 0)) == paris(2024, 11, 3, 12, 0)
    assert services.offer_expiry(s, paris(2024, 12, 3, 23, 59, 58)) == paris(2024, 12, 3, 23, 59, 59)
    assert services.offer_expiry(s, paris(2024, 12, 3, 23, 59, 59)) is None
    assert services.offer_expiry(s, dt.datetime(2024, 12, 4, 9, 0, tzinfo=dt.UTC)) is None
