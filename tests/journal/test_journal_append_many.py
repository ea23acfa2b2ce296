"""Entries appended in bulk (``journal_append_many``) are the very entries ``journal_append``
would have written, one by one: same seq, links and hashes, and they verify."""

import datetime as dt

import pytest
from django.db import transaction

from guichet.common.actor import Actor
from guichet.journal.models import Entry, Head
from guichet.journal.selectors import verify_all
from guichet.journal.services import JournalError, journal_append, journal_append_many

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 4, 10, 30, 0, 123456, tzinfo=dt.UTC)


def items(chain: int, n: int, start: int = 0) -> list[dict]:
    return [
        dict(actor=Actor(ref=f"user:{i}", channel="web"), operation="test.bulk", objects=[f"status.thing:{i}"],
             payload={"email": f"p{i}@example.org"}, details={"i": i}, organisation_id=chain,
             now=NOW + dt.timedelta(seconds=i))
        for i in range(start, start + n)
    ]


def snapshot(chain: int) -> list[tuple]:
    return list(
        Entry.objects.filter(chain=chain).order_by("seq")
        .values_list("seq", "occurred_at", "actor", "channel", "operation", "refs", "details", "payload_digest",
                     "prev_hash", "hash")
    )


def test_bulk_entries_equal_single_ones_and_verify():
    with transaction.atomic():
        for item in items(1, 3):  # an existing chain, then bulk on top of it
            journal_append(**{**item, "organisation_id": 1})
            journal_append(**{**item, "organisation_id": 2})
    with transaction.atomic():
        for item in items(1, 5, start=3):
            journal_append(**item)
    with transaction.atomic():
        journal_append_many(items(2, 5, start=3))

    single, bulk = snapshot(1), snapshot(2)
    assert len(bulk) == 8
    # Chains differ by their number only, which is hashed: compare everything but the hashes...
    assert [row[:8] for row in bulk] == [row[:8] for row in single]
    # ...and check the links: each entry points to the previous one's hash.
    assert all(bulk[i][8] == bulk[i - 1][9] for i in range(1, len(bulk)))
    assert Head.objects.get(chain=2).seq == 8 and Head.objects.get(chain=2).hash == bulk[-1][9]
    assert all(v.ok for v in verify_all())


def test_bulk_over_several_chains_keeps_each_chain_in_order():
    mixed = [x for pair in zip(items(7, 4), items(8, 4), strict=True) for x in pair]
    with transaction.atomic():
        entries = journal_append_many(mixed)
    assert [(e.chain, e.seq) for e in entries] == [(7, 1), (8, 1), (7, 2), (8, 2), (7, 3), (8, 3), (7, 4), (8, 4)]
    assert all(v.ok for v in verify_all())


@pytest.mark.django_db(transaction=True)
def test_bulk_outside_a_transaction_is_refused_and_empty_is_nothing():
    with pytest.raises(JournalError):
        journal_append_many(items(3, 1))
    assert journal_append_many([]) == []
    assert not Entry.objects.exists()
