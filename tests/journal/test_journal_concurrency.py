"""Concurrent appends from several connections serialise on the chain's head row."""

import pytest
from django.db import transaction

from guichet.common.actor import Actor
from guichet.journal.models import Entry, Head
from guichet.journal.selectors import verify_all
from guichet.journal.services import journal_append
from tests.concurrency import run_together

WORKERS = 4
PER_WORKER = 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_unbroken_chain():
    def work(n: int) -> None:
        for i in range(PER_WORKER):
            with transaction.atomic():
                journal_append(actor=Actor.system(f"worker{n}"), operation="test.concurrent",
                               details={"worker": n, "i": i}, organisation_id=5)

    errors = run_together(work, WORKERS)
    assert not errors, errors
    total = WORKERS * PER_WORKER
    assert list(Entry.objects.filter(chain=5).values_list("seq", flat=True)) == list(range(1, total + 1))
    assert Head.objects.get(chain=5).seq == total
    verdicts = verify_all()
    assert [v.count for v in verdicts] == [total]
    assert all(v.ok for v in verdicts)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_first_appends_to_a_new_chain_race_safely():
    """Two connections creating the same chain's head at once: one waits, none fails."""
    def work(_n: int) -> None:
        with transaction.atomic():
            journal_append(actor=Actor.cli(), operation="test.first", organisation_id=9)

    errors = run_together(work, 2, timeout=60)
    assert not errors, errors
    assert sorted(Entry.objects.filter(chain=9).values_list("seq", flat=True)) == [1, 2]
    assert all(v.ok for v in verify_all())
