"""Every e-mail a service sends goes out only once its transaction has committed: an action that
fails and is rolled back after it scheduled its e-mail sends nothing (and writes nothing).

For each service that e-mails (sign-up, guardian invitation, status subscription and update
notification, waiting-list offer, booking confirmation), the action is run twice:
- made to fail right after it scheduled its e-mail, inside its own transaction (``on_commit``
  is patched to register the callback, then raise): no e-mail, no row changed;
- normally (control): exactly the e-mail expected.
The e-mails are sent by tasks (immediate backend here) queued with ``transaction.on_commit``,
or by ``on_commit`` callbacks directly; ``django_capture_on_commit_callbacks(execute=True)``
runs what would run at commit.

Not covered here because they write nothing: Django's password reset view (sends while
answering, outside any transaction) and the journal checkpoint sent to witnesses (a command
that reads only).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction

from guichet.accounts import families
from guichet.bookings import guardians
from guichet.bookings import services as bookings
from guichet.bookings.models import Basket, Booking, Guardian, WaitlistEntry
from guichet.common.actor import Actor
from guichet.status import services as status
from guichet.status import subscriptions
from guichet.status.models import Subscription
from tests.bookings.test_services import BEFORE, PARENT, World, item, paris

pytestmark = pytest.mark.django_db


class Boom(Exception):
    """The action fails after its e-mail was scheduled."""


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.GUICHET_PUBLIC_URL = "https://guichet.example.fr"


@pytest.fixture
def fail_after(monkeypatch):
    """``fail_after("name")``: the next ``on_commit`` callback whose name contains ``name`` is
    registered, then the action raises ``Boom`` inside its transaction."""
    real = transaction.on_commit

    def arm(name: str):
        def on_commit(func, using=None, robust=False):
            real(func, using=using, robust=robust)
            target = getattr(func, "func", func)  # functools.partial
            if name in getattr(target, "__qualname__", ""):
                monkeypatch.setattr(transaction, "on_commit", real)
                raise Boom

        monkeypatch.setattr(transaction, "on_commit", on_commit)

    return arm


def run(capture, action):
    with capture(execute=True) as callbacks:
        action()
    return callbacks


def fails(capture, fail_after, name, action):
    fail_after(name)
    with capture(execute=True) as callbacks, pytest.raises(Boom):
        action()
    assert callbacks == [], "a rolled-back action left a callback to run at commit"
    assert mail.outbox == [], "a rolled-back action sent an e-mail"


def test_sign_up(django_capture_on_commit_callbacks, fail_after):
    User = get_user_model()

    def sign_up():
        families.family_signup(
            email="new@example.org", password="une phrase solide", actor=Actor.cli()
        )

    fails(django_capture_on_commit_callbacks, fail_after, "family_signup", sign_up)
    assert not User.objects.filter(email="new@example.org").exists()
    run(django_capture_on_commit_callbacks, sign_up)
    assert [m.to for m in mail.outbox] == [["new@example.org"]]


def test_guardian_invitation(django_capture_on_commit_callbacks, fail_after):
    world = World()
    household, _kids = world.household()
    parent = get_user_model().objects.create_user("p@example.org", "p@example.org", "x" * 12)
    Guardian.objects.create(organisation=world.org, household=household, user=parent)

    def invite():
        guardians.guardian_invite(
            household=household, inviter=parent, email="other@example.org", actor=PARENT
        )

    fails(django_capture_on_commit_callbacks, fail_after, "guardian_invite", invite)
    run(django_capture_on_commit_callbacks, invite)
    assert [m.to for m in mail.outbox] == [["other@example.org"]]


def _status_portal():
    status.publish_now(
        portal_slug="saint-nazaire",
        actor=Actor.cli(),
        title="Catalogue",
        operations=[
            {"op": "portal.set", "name": "Saint-Nazaire"},
            {"op": "organisation.set", "slug": "ville", "name": "Ville"},
            {
                "op": "service.set",
                "organisation": "ville",
                "slug": "etat-civil",
                "name": "État civil",
            },
            {
                "op": "procedure.set",
                "service": "etat-civil",
                "slug": "teleservices",
                "name": "Demandes en ligne",
            },
            {
                "op": "incident.set",
                "organisation": "ville",
                "slug": "cyberattaque",
                "title": "Cyberattaque",
                "started_at": "2024-04-03T08:00:00+02:00",
            },
        ],
    )
    from guichet.catalog.models import Portal

    return Portal.objects.get(slug="saint-nazaire")


def test_status_subscription(django_capture_on_commit_callbacks, fail_after):
    portal = _status_portal()

    def subscribe():
        subscriptions.subscription_request(
            portal=portal,
            email="abonne@example.org",
            service=None,
            language="fr",
            actor=Actor.cli(),
            now=BEFORE,
        )

    fails(django_capture_on_commit_callbacks, fail_after, "_enqueue_mail", subscribe)
    assert not Subscription.objects.exists()
    run(django_capture_on_commit_callbacks, subscribe)
    assert [m.to for m in mail.outbox] == [["abonne@example.org"]]


def test_status_update_notification(django_capture_on_commit_callbacks, fail_after):
    portal = _status_portal()
    Subscription.objects.create(
        portal=portal,
        email="abonne@example.org",
        language="fr",
        token="t" * 40,
        created_at=BEFORE,
        confirmed_at=BEFORE,
    )

    def publish(state):
        return lambda: status.publish_now(
            portal_slug="saint-nazaire",
            actor=Actor.cli(),
            title="Mise à jour",
            operations=[
                {
                    "op": "availability.set",
                    "incident": "cyberattaque",
                    "service": "etat-civil",
                    "procedure": "teleservices",
                    "channel": "online",
                    "state": state,
                    "instead": "Au guichet de la mairie.",
                }
            ],
        )

    from guichet.status.models import ChangeSet

    published = ChangeSet.objects.count()
    fails(django_capture_on_commit_callbacks, fail_after, "publish", publish("suspended"))
    assert ChangeSet.objects.count() == published
    run(django_capture_on_commit_callbacks, publish("degraded"))
    assert [m.to for m in mail.outbox] == [["abonne@example.org"]]


def test_waiting_list_offer(django_capture_on_commit_callbacks, fail_after):
    world = World()
    session = world.session(capacity=1)
    first, (a,) = world.household()
    waiting, (b,) = world.household()
    with django_capture_on_commit_callbacks(execute=True):
        world.submit(first, [item(a, session)], key="a")
        world.submit(waiting, [item(b, session)], key="b")
    mail.outbox.clear()
    booking = Booking.objects.get(child=a)

    def cancel():
        bookings.booking_cancel(booking=booking, actor=PARENT, now=paris(2024, 11, 21, 9, 0))

    fails(django_capture_on_commit_callbacks, fail_after, "_queue_offer_mail", cancel)
    booking.refresh_from_db()
    assert booking.status == "booked" and WaitlistEntry.objects.get(child=b).status == "waiting"
    run(django_capture_on_commit_callbacks, cancel)
    assert [m.to for m in mail.outbox] == [[waiting.email]]
    assert WaitlistEntry.objects.get(child=b).status == "offered"


def test_booking_confirmation(django_capture_on_commit_callbacks, fail_after):
    world = World(capacity=5)
    session = world.session()
    household, (child,) = world.household()

    def submit():
        world.submit(household, [item(child, session)], key="k")

    fails(django_capture_on_commit_callbacks, fail_after, "_queue_confirmations", submit)
    assert not Booking.objects.exists()
    assert not Basket.objects.filter(status="done").exists()
    run(django_capture_on_commit_callbacks, submit)
    assert [m.to for m in mail.outbox] == [[household.email]]
    assert Booking.objects.get().session == session


def test_the_sweep_of_the_code_finds_no_other_sender():
    """A new ``send_mail``/``EmailMessage`` outside the places above must be added here."""
    import pathlib
    import re

    root = pathlib.Path(families.__file__).resolve().parents[1]
    senders = set()
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        if re.search(
            r"\bsend_mail\(|\bEmailMessage\(|\bsend_mass_mail\(|\bEmailMultiAlternatives\(",
            path.read_text(),
        ):
            senders.add(path.relative_to(root).as_posix())
    assert senders == {
        "accounts/families.py",  # on_commit (test_sign_up)
        "bookings/guardians.py",  # on_commit (test_guardian_invitation)
        "bookings/tasks.py",  # tasks queued on_commit (offer, confirmation)
        "status/tasks.py",  # tasks queued on_commit (subscription, notification)
        "journal/publish.py",  # the checkpoint to witnesses: a read-only command
    }, senders
