"""Concurrent appends from several connections serialise on the chain's head row."""

import threading

import pytest
from django.db import connection, transaction

from guichet.common.actor import Actor
from guichet.journal.models import Entry, Head
from guichet.journal.selectors import verify_all
from guichet.journal.services import journal_append

WORKERS = 4
PER_WORKER = 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_unbroken_chain():
    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(PER_WORKER):
                with transaction.atomic():
                    journal_append(actor=Actor.system(f"worker{n}"), operation="test.concurrent",
                                   details={"worker": n, "i": i}, organisation_id=5)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
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
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                journal_append(actor=Actor.cli(), operation="test.first", organisation_id=9)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(Entry.objects.filter(chain=9).values_list("seq", flat=True)) == [1, 2]
    assert all(v.ok for v in verify_all())
