"""Receipts of one server process go several per statement (bookings/receipts.py, PostgreSQL):
one turn of the receipt lock for all the requests that arrive while the previous statement
runs. Each request still gets its own basket, committed before it is told; a key sent twice
gives one basket; a value the database refuses fails its own request only."""

from __future__ import annotations

import threading

import pytest

from guichet.bookings import services
from guichet.bookings.models import Basket

from .test_services_batch import OPENS, PARENT, Town

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _receive(town, i, key, results, errors):
    try:
        child, session = town.children[i][0], town.sessions[0]
        basket = services.basket_receive(
            household=town.households[i], items=[{"child": child.pk, "session": session.pk, "unit": "matin"}],
            mode=Basket.Mode.PARTIAL, actor=PARENT, now=OPENS, idempotency_key=key, channel="api")
        results[(i, key)] = basket.pk
    except Exception as exc:  # noqa: BLE001 - the test looks at it
        errors[(i, key)] = exc
    finally:
        from django.db import connection

        connection.close()


def _held_first_statement(monkeypatch, waiting: int):
    """The receipt thread's first statement waits until ``waiting`` more receipts are pending."""
    from guichet.bookings import receipts

    real = services.receipt_batch
    calls: list[int] = []

    def spy(organisation_id, rows):
        if not calls:
            batcher = receipts._get()  # noqa: SLF001
            for _ in range(500):
                with batcher.cond:
                    if len(batcher.pending) >= waiting:
                        break
                threading.Event().wait(0.01)
        calls.append(len(rows))
        return real(organisation_id, rows)

    monkeypatch.setattr(services, "receipt_batch", spy)
    return calls


def test_concurrent_receipts_share_statements_and_each_gets_its_own_basket(monkeypatch):
    town = Town("rb1", households=12)
    calls = _held_first_statement(monkeypatch, waiting=11)
    results, errors = {}, {}
    threads = [threading.Thread(target=_receive, args=(town, i, f"k{i}", results, errors)) for i in range(12)]
    threads[0].start()
    threading.Event().wait(0.2)  # the first one is in the statement, the other eleven arrive meanwhile
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert calls == [1, 11]  # two statements for twelve receipts
    pks = list(results.values())
    assert len(set(pks)) == 12
    stored = Basket.objects.filter(pk__in=pks, status=Basket.Status.RECEIVED)
    assert stored.count() == 12  # committed, in line, when the request was told its number


def test_a_key_sent_twice_in_one_statement_gives_one_basket_and_a_bad_value_fails_alone(monkeypatch):
    town = Town("rb2", households=4)
    calls = _held_first_statement(monkeypatch, waiting=4)
    results, errors = {}, {}
    jobs = [(0, "first"), (1, "twice"), (1, "twice"), (2, "bad\x00key"), (3, "fine")]
    threads = [threading.Thread(target=_receive, args=(town, i, key, results, errors)) for i, key in jobs]
    threads[0].start()
    threading.Event().wait(0.2)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(20)
    assert set(errors) == {(2, "bad\x00key")}  # refused by the database: that request alone
    assert results[(1, "twice")] and Basket.objects.filter(household=town.households[1]).count() == 1
    assert Basket.objects.filter(household=town.households[3]).count() == 1
    assert calls[0] == 1 and calls[1] == 4  # the batch with the bad value, then one by one
    assert Basket.objects.filter(household=town.households[2]).count() == 0


def test_with_batching_off_each_request_sends_its_own_receipt(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.GUICHET_BOOKING_RECEIPT_BATCHING = "0"
    town = Town("rb3", households=1)
    child, session = town.children[0][0], town.sessions[0]
    with CaptureQueriesContext(connection) as queries:
        basket = services.basket_receive(
            household=town.households[0], items=[{"child": child.pk, "session": session.pk, "unit": "matin"}],
            mode=Basket.Mode.PARTIAL, actor=PARENT, now=OPENS, idempotency_key="own", channel="api")
    assert len(queries.captured_queries) == 1 and "pg_advisory_xact_lock" in queries.captured_queries[0]["sql"]
    assert Basket.objects.get(pk=basket.pk).status == Basket.Status.RECEIVED


def test_a_database_that_fails_fails_the_whole_batch_at_once(monkeypatch):
    """Unreachable or failing database: every request of the batch hears it at once ("busy,
    send again"); none waits for its neighbours to be retried one by one."""
    from django.db import OperationalError

    town = Town("rb4", households=3)
    calls = []

    def down(organisation_id, rows):
        calls.append(len(rows))
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "receipt_batch", down)
    results, errors = {}, {}
    threads = [threading.Thread(target=_receive, args=(town, i, f"d{i}", results, errors)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not results and len(errors) == 3
    assert all(isinstance(e, OperationalError) for e in errors.values())
    assert sum(calls) == 3 and not Basket.objects.filter(household__in=town.households).exists()
