"""Two sign-ups with the same new address at the same instant (a double click): one account,
one verification link, no error. The control shows the race exists without the guard."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, transaction

from guichet.accounts.families import family_signup
from guichet.common.actor import Actor
from tests.concurrency import run_together

EMAIL = "double.clic@example.org"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_sign_ups_make_one_account():
    def work(_n: int) -> None:
        family_signup(email=EMAIL, password="une phrase de passe solide", actor=Actor.anonymous())

    errors = run_together(work, 4)
    assert not errors, errors
    assert get_user_model().objects.filter(email=EMAIL).count() == 1
    assert len([m for m in mail.outbox if m.to == [EMAIL]]) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_control_without_the_guard_the_second_insert_fails():
    # Every request checks before any inserts (the barrier makes the unlucky timing certain):
    # the check alone lets them all through, and only the unique index stops the others.
    checked = threading.Barrier(4, timeout=30)

    def work(_n: int) -> None:
        with transaction.atomic():
            if not get_user_model().objects.select_for_update().filter(username=EMAIL).exists():
                checked.wait()
                get_user_model().objects.create(username=EMAIL, email=EMAIL, is_active=False)

    errors = run_together(work, 4)
    assert errors and all(isinstance(e, IntegrityError) for e in errors)
    assert get_user_model().objects.filter(email=EMAIL).count() == 1
