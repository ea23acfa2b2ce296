"""``journal_append_many(..., returning=False)`` (what the booking drain calls) writes exactly the
entries that the default call writes, and the rows keep the instant they were given in any time
zone (on PostgreSQL the rows travel as one JSON document, their times as ISO 8601 text)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from guichet.common.actor import Actor
from guichet.journal.models import Entry, Head
from guichet.journal.selectors import verify_all
from guichet.journal.services import journal_append_many

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 6, 4, 12, 30, 0, 123456, tzinfo=PARIS)


def items(chain: int) -> list[dict]:
    return [
        dict(actor=Actor(ref=f"user:{i}", channel="web"), operation="test.quiet",
             objects=[f"status.thing:{i}", "bookings.household:7"], payload=None if i % 2 else {"n": i},
             details={"i": i, "mode": "partial", "none": None}, organisation_id=chain,
             now=NOW + dt.timedelta(milliseconds=i))
        for i in range(5)
    ]


def rows(chain: int) -> list[tuple]:
    return list(
        Entry.objects.filter(chain=chain).order_by("seq")
        .values_list("seq", "occurred_at", "actor", "channel", "operation", "refs", "details", "payload_digest")
    )


def test_quiet_call_writes_the_same_entries_and_returns_none():
    with transaction.atomic():
        returned = journal_append_many(items(1))
    with transaction.atomic():
        quiet = journal_append_many(items(2), returning=False)

    assert quiet == []
    assert [e.seq for e in returned] == [1, 2, 3, 4, 5]
    assert rows(2) == rows(1)  # chains differ by their number only (hashed, so hashes and links differ)
    links = list(Entry.objects.filter(chain=2).order_by("seq").values_list("prev_hash", "hash"))
    assert all(links[i][0] == links[i - 1][1] for i in range(1, len(links)))
    assert Head.objects.get(chain=2).seq == 5
    assert all(v.ok for v in verify_all())


def test_times_given_in_another_zone_keep_their_instant():
    with transaction.atomic():
        journal_append_many(items(3), returning=False)
    stored = [row[1] for row in rows(3)]
    assert stored == [NOW + dt.timedelta(milliseconds=i) for i in range(5)]
    assert stored[0].astimezone(dt.UTC) == dt.datetime(2026, 6, 4, 10, 30, 0, 123456, tzinfo=dt.UTC)
