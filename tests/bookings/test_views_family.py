"""The family portal through the Django client: what a parent sees and what it changes."""

from __future__ import annotations

import io
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from PIL import Image

from guichet.bookings import ical
from guichet.bookings.models import Basket, Booking, Guardian, Justification
from tests.bookings.test_services import BEFORE, WEDNESDAY, World, paris

pytestmark = pytest.mark.django_db

LATE = paris(2024, 12, 2, 9, 0)  # after both deadlines of WEDNESDAY
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buf, "PNG")
    return buf.getvalue()


class Family:
    def __init__(self, world: World, client, children=1):
        self.world = world
        self.household, self.children = world.household(children=children)
        self.user = get_user_model().objects.create_user(f"parent{self.household.pk}", password="x" * 12)
        Guardian.objects.create(organisation=world.org, household=self.household, user=self.user)
        self.client = client
        client.force_login(self.user)

    def url(self, path=""):
        return f"/{self.world.portal.slug}/famille/{path}"


@pytest.fixture
def world(db):
    return World(capacity=2)


@pytest.fixture
def family(world, client):
    return Family(world, client, children=2)


def book(family, session, unit="matin-repas", key="k1", children=None, mode="partial"):
    data = {"mode": mode, "idempotency_key": key}
    for c in children or family.children[:1]:
        data[f"item-{c.pk}-{session.pk}"] = unit
    return family.client.post(family.url("panier/"), data)


def test_calendar_shows_states_and_deadlines_in_words(world, family):
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        r = family.client.get(family.url("calendrier/") + "?mois=2024-12")
    html = r.content.decode()
    assert r.status_code == 200
    assert "Enfant0" in html and "Enfant1" in html
    assert f'name="item-{family.children[0].pk}-{session.pk}"' in html
    # The deadline in plain words (French once the lead's catalogue translates the msgid).
    assert re.search(r"dimanche 1(er)? décembre", html)


def test_a_basket_books_and_a_double_submit_books_once(world, family):
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        r1 = book(family, session, children=family.children)
        r2 = book(family, session, children=family.children)
    assert r1.status_code == 302 and r1["Location"] == r2["Location"]
    assert Basket.objects.count() == 1
    assert Booking.objects.filter(status="booked").count() == 2
    with time_machine.travel(BEFORE, tick=False):
        page = family.client.get(r1["Location"])
    assert page.status_code == 200
    assert page.content.decode().count("fam-state--booked") == 2


def test_after_the_deadline_the_day_is_refused_with_the_reason(world, family):
    session = world.session()
    with time_machine.travel(LATE, tick=False):
        cal = family.client.get(family.url("calendrier/") + "?mois=2024-12").content.decode()
        assert f'name="item-{family.children[0].pk}-{session.pk}"' not in cal  # nothing to select
        r = book(family, session)
        page = family.client.get(r["Location"]).content.decode()
    assert not Booking.objects.exists()
    assert "fam-state--refused" in page
    assert "fam-reason" in page


def test_another_household_is_invisible(world, family, client):
    session = world.session()
    other = Family(world, client.__class__(), children=1)
    with time_machine.travel(BEFORE, tick=False):
        book(other, session, key="other")
        booking = Booking.objects.get()
        basket = Basket.objects.get()
        c = family.client
        assert c.get(family.url(f"reservations/{booking.pk}/annuler/")).status_code == 404
        assert c.post(family.url(f"reservations/{booking.pk}/annuler/")).status_code == 404
        assert c.get(family.url(f"panier/{basket.pk}/")).status_code == 404
        # Someone else's child in a basket.
        r = c.post(family.url("panier/"), {"mode": "partial", "idempotency_key": "x",
                                           f"item-{other.children[0].pk}-{session.pk}": "journee"})
        assert r.status_code == 404
    assert Booking.objects.get().status == "booked"


def test_not_signed_in_goes_to_login_and_no_guardian_is_404(world, client):
    assert client.get(f"/{world.portal.slug}/famille/").status_code == 302
    stranger = get_user_model().objects.create_user("stranger", password="x" * 12)
    client.force_login(stranger)
    assert client.get(f"/{world.portal.slug}/famille/").status_code == 404


def test_late_cancel_says_billed_with_the_justification_deadline(world, family):
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        book(family, session)
    booking = Booking.objects.get()
    with time_machine.travel(LATE, tick=False):
        confirm = family.client.get(family.url(f"reservations/{booking.pk}/annuler/")).content.decode()
        assert "fam-warning" in confirm
        assert "12 décembre" in confirm  # session day + 8 justification days
        done = family.client.post(family.url(f"reservations/{booking.pk}/annuler/"))
    booking.refresh_from_db()
    assert booking.status == "cancelled" and booking.late
    assert done.status_code == 200 and "fam-warning" in done.content.decode()


def test_cancel_in_time_is_not_billed(world, family):
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        book(family, session)
        booking = Booking.objects.get()
        page = family.client.get(family.url(f"reservations/{booking.pk}/annuler/")).content.decode()
        assert "fam-warning" not in page and "fam-ok" in page
        family.client.post(family.url(f"reservations/{booking.pk}/annuler/"))
    booking.refresh_from_db()
    assert booking.status == "cancelled" and not booking.late


@pytest.mark.parametrize(
    "name,content,ok",
    [
        ("certificat.pdf", PDF, True),
        ("photo.png", None, True),
        ("faux.pdf", b"MZ\x90\x00 not a pdf at all", False),  # extension lies
        ("script.exe", PDF, False),  # content fine, extension refused
        ("gros.pdf", PDF + b"0" * (5 * 1024 * 1024), False),  # above 5 MB
    ],
)
def test_justification_upload_checks_type_and_size(world, family, settings, tmp_path, name, content, ok):
    settings.MEDIA_ROOT = tmp_path
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        book(family, session)
    booking = Booking.objects.get()
    with time_machine.travel(LATE, tick=False):
        family.client.post(family.url(f"reservations/{booking.pk}/annuler/"))
        upload = SimpleUploadedFile(name, content if content is not None else png_bytes())
        r = family.client.post(family.url(f"reservations/{booking.pk}/justificatif/"),
                               {"kind": "medical", "document": upload})
    assert (r.status_code == 200) is ok
    assert Justification.objects.exists() is ok
    if not ok:
        assert "fam-error" in r.content.decode()
    else:
        j = Justification.objects.get()
        # Served to the household, never to another family, never from a public URL.
        with time_machine.travel(LATE, tick=False):
            got = family.client.get(family.url(f"justificatifs/{j.pk}/document/"))
        assert got.status_code == 200 and got["Cache-Control"].startswith("private")
        other = get_user_model().objects.create_user("other", password="x" * 12)
        family.client.force_login(other)
        assert family.client.get(family.url(f"justificatifs/{j.pk}/document/")).status_code == 404


def test_ical_feed_lists_booked_sessions_with_a_secret_token(world, family, client):
    session = world.session()
    with time_machine.travel(BEFORE, tick=False):
        book(family, session)
        home = family.client.get(family.url()).content.decode()
    token = ical.household_token(family.household.pk)
    url = family.url(f"agenda/{family.household.pk}-{token}.ics")
    assert url in home
    anonymous = client.__class__()
    with time_machine.travel(BEFORE, tick=False):
        r = anonymous.get(url)
    body = r.content.decode()
    assert r.status_code == 200 and r["Content-Type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in body and "Enfant0" in body and "Centre" in body
    assert f"DTSTART:{WEDNESDAY:%Y%m%d}T" in body
    assert anonymous.get(family.url(f"agenda/{family.household.pk}-{'0' * 32}.ics")).status_code == 404


def test_waiting_list_position_and_full_sessions(world, family, client):
    session = world.session(capacity=1)
    other = Family(world, client.__class__(), children=1)
    with time_machine.travel(BEFORE, tick=False):
        book(other, session, key="first")
        r = book(family, session, key="second")
        result = family.client.get(r["Location"]).content.decode()
        cal = family.client.get(family.url("calendrier/") + "?mois=2024-12").content.decode()
    assert "fam-state--waitlisted" in result
    with translation.override("fr"):
        assert translation.gettext("position %(n)s") % {"n": 1} in cal


def test_week_view_and_bad_period(world, family):
    world.session()
    with time_machine.travel(BEFORE, tick=False):
        assert family.client.get(family.url("calendrier/") + "?semaine=2024-12-04").status_code == 200
        assert family.client.get(family.url("calendrier/") + "?mois=2024-13").status_code == 404
        r = family.client.post(family.url("panier/"), {"mode": "partial", "idempotency_key": "k"})
    assert r.status_code == 400
    assert not mail.outbox


def test_a_confirmation_email_lists_each_day(world, family, settings, django_capture_on_commit_callbacks):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    session = world.session()
    with time_machine.travel(BEFORE, tick=False), django_capture_on_commit_callbacks(execute=True):
        book(family, session)
        book(family, session)  # the same request again: no second e-mail
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [family.household.email]
    assert "Enfant0" in mail.outbox[0].body and "mercredi 4 décembre 2024" in mail.outbox[0].body


def test_a_day_closed_at_every_centre_is_one_line_not_one_card_per_centre(world, family):
    session = world.session()
    monday = session.date.toordinal() - 2  # the Wednesday's "sunday before" deadline has passed
    from datetime import date

    day = date.fromordinal(monday)
    with time_machine.travel(paris(day.year, day.month, day.day, 12, 0), tick=False):
        page = family.client.get(family.url("calendrier/") + f"?mois={session.date:%Y-%m}").content.decode()
    with translation.override("fr"):
        closed = translation.gettext("Bookings closed for this day")
    assert page.count(closed) == family.household.children.count()  # one line per child
    assert 'class="fam-cells"' not in page  # no per-centre cards for that day
