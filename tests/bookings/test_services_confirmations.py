"""Each answered basket gets exactly one confirmation, whoever drained the queue."""

import pytest
from django.core import mail

from guichet.bookings import services
from guichet.bookings.models import Basket

from .test_services import BEFORE, PARENT, World, item

pytestmark = pytest.mark.django_db


def test_a_basket_answered_by_another_request_still_gets_its_confirmation(
    settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world = World(capacity=5)
    session = world.session()
    (first, [a]), (second, [b]) = world.household(), world.household()
    with django_capture_on_commit_callbacks(execute=True):
        # The first family's request is received but its process stops before answering it...
        services.basket_receive(  # the receipt step alone, as a crashed request leaves it
            household=first, items=[item(a, session)], mode="partial", actor=PARENT, now=BEFORE,
            idempotency_key="first", channel="portal",
        )
        # ...the second family's request drains the queue in receipt order, answering both.
        world.submit(second, [item(b, session)], key="second")
    assert set(Basket.objects.values_list("status", flat=True)) == {"done"}
    assert sorted(m.to[0] for m in mail.outbox) == [first.email, second.email]

    with django_capture_on_commit_callbacks(execute=True):
        world.submit(second, [item(b, session)], key="second")  # a retry: no second e-mail
    assert len(mail.outbox) == 2
