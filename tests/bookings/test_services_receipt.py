"""The receipt is short: under the receipt lock only the INSERT and its COMMIT. The receipt's
journal entry is written by the drain that answers the basket, just before its answer, in the
answer's transaction (ADR 0005): so a basket received and never answered (a crash) is answered
and journaled by the next drain."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from guichet.bookings import services
from guichet.bookings.models import Basket
from guichet.journal.models import Entry
from guichet.journal.selectors import verify_all

from .test_services_batch import OPENS, PARENT, Town

pytestmark = pytest.mark.django_db


def journal(town: Town) -> list[tuple]:
    return [
        (e.operation, e.refs[0], e.occurred_at)
        for e in Entry.objects.filter(chain=town.org.pk).order_by("seq")
    ]


def test_a_receipt_is_one_insert_under_the_lock_and_writes_no_journal_entry():
    town = Town("r1", households=2)
    with CaptureQueriesContext(connection) as queries:
        basket = town.receive(0, [(0, 0, 0, "journee")], Basket.Mode.PARTIAL, OPENS)
    sql = [q["sql"] for q in queries.captured_queries]
    writes = [s for s in sql if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(writes) == 1 and "bookings_basket" in writes[0]
    if connection.vendor == "postgresql":
        assert any("pg_advisory_xact_lock" in s for s in sql)
    assert Basket.objects.get(pk=basket.pk).status == Basket.Status.RECEIVED  # committed, in line
    assert not Entry.objects.filter(chain=town.org.pk).exists()


@pytest.mark.parametrize("batch", [True, False])
def test_the_drain_journals_each_receipt_then_its_answer_in_receipt_order(batch, monkeypatch):
    monkeypatch.setattr(services, "BATCH_ALLOCATION", batch)
    town = Town(f"r2{batch}", households=3)
    baskets = [
        town.receive(i, [(i, 0, 0, "journee")], Basket.Mode.PARTIAL, OPENS + dt.timedelta(seconds=i))
        for i in range(3)
    ]
    services._drain_until(baskets[-1])  # noqa: SLF001
    expected = []
    for b in baskets:
        ref = f"bookings.basket:{b.pk}"
        expected += [("bookings.basket.receive", ref, b.received_at), ("bookings.basket.answer", ref, b.received_at)]
    assert journal(town) == expected
    receipt = Entry.objects.filter(chain=town.org.pk, operation="bookings.basket.receive").first()
    assert receipt.refs == [f"bookings.basket:{baskets[0].pk}", f"bookings.household:{town.households[0].pk}"]
    assert receipt.details == {"items": 1, "mode": "partial"} and receipt.actor == "user:1"
    assert all(v.ok for v in verify_all())


def test_a_basket_left_unanswered_by_a_crash_is_answered_and_journaled_by_the_next_drain():
    town = Town("r3", households=2)
    orphan = town.receive(0, [(0, 0, 0, "matin")], Basket.Mode.PARTIAL, OPENS)  # its process died here
    later = town.receive(1, [(1, 0, 0, "matin")], Basket.Mode.PARTIAL, OPENS + dt.timedelta(seconds=5))
    services._drain_until(later)  # noqa: SLF001
    orphan.refresh_from_db()
    assert orphan.status == Basket.Status.DONE
    assert [op for op, ref, _t in journal(town) if ref == f"bookings.basket:{orphan.pk}"] == [
        "bookings.basket.receive", "bookings.basket.answer"]
    assert [ref for op, ref, _t in journal(town)][::2] == [f"bookings.basket:{orphan.pk}", f"bookings.basket:{later.pk}"]
    assert all(v.ok for v in verify_all())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgres_a_receipt_is_one_statement_and_a_retry_finds_the_first_basket():
    """Outside any transaction (as the portal and the API call it), the receipt is ONE statement:
    the receipt lock, the INSERT (skipped when the key was already received) and, in autocommit
    mode, its COMMIT, all inside the server. A retry with the same key returns the first basket
    and stores nothing."""
    town = Town("r4", households=1)
    child, session = town.children[0][0], town.sessions[0]
    args = dict(household=town.households[0], items=[{"child": child.pk, "session": session.pk, "unit": "matin"}],
                mode=Basket.Mode.PARTIAL, actor=PARENT, now=OPENS,
                channel="portal")
    statements = []
    real = services.receipt_batch

    def spy(organisation_id, rows):
        statements.append(len(rows))
        return real(organisation_id, rows)

    with CaptureQueriesContext(connection) as queries, pytest.MonkeyPatch.context() as mp:
        mp.setattr(services, "receipt_batch", spy)
        first = services.basket_receive(idempotency_key="once", **args)
    # The request's own connection sends nothing: the process's receipt thread sends one statement.
    assert queries.captured_queries == [] and statements == [1]
    sql = services._receipt_sql()  # noqa: SLF001
    assert "pg_advisory_xact_lock" in sql and "INSERT" in sql.upper() and "ON CONFLICT" in sql.upper()
    assert Basket.objects.get(pk=first.pk).status == Basket.Status.RECEIVED  # committed, in line

    again = services.basket_receive(idempotency_key="once", **{**args, "mode": Basket.Mode.ALL_OR_NOTHING})
    assert again.pk == first.pk and again.mode == Basket.Mode.PARTIAL
    assert Basket.objects.filter(household=town.households[0]).count() == 1
    # Bad input with a key already received answers as the first request did; a new key is refused.
    assert services.basket_receive(idempotency_key="once", **{**args, "items": []}).pk == first.pk
    with pytest.raises(services.BookingError) as refused:
        services.basket_receive(idempotency_key="other", **{**args, "items": []})
    assert refused.value.code == "empty_basket"
    assert Basket.objects.filter(household=town.households[0]).count() == 1
