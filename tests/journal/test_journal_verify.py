"""`guichet journal verify` on real database rows: intact, then tampered in every way."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import transaction

from guichet.common.actor import Actor
from guichet.journal.chain import EntryData, entry_hash
from guichet.journal.models import Entry, Head
from guichet.journal.selectors import verify_all
from guichet.journal.services import JournalError, journal_append

pytestmark = pytest.mark.django_db
ORG = 42


def append(n: int, chain: int = ORG, start: int = 1) -> list[Entry]:
    out = []
    for i in range(start, start + n):
        with transaction.atomic():
            out.append(
                journal_append(
                    actor=Actor.cli(), operation=f"test.op{i}", objects=[f"status.thing:{i}"],
                    payload={"email": f"person{i}@example.org"}, details={"i": i},
                    organisation_id=chain,
                )
            )
    return out


def verify() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("journal", "verify", stdout=out, stderr=err)
        code = 0
    except SystemExit as e:
        code = e.code
    return code, out.getvalue(), err.getvalue()


def broken_at(seq: int) -> str:
    return f"chain {ORG}: BROKEN at entry #{seq}"


# --- appending ------------------------------------------------------------------------------


def test_entries_are_numbered_and_linked():
    entries = append(4)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == "0" * 64
    for a, b in zip(entries, entries[1:], strict=False):
        assert b.prev_hash == a.hash
    head = Head.objects.get(chain=ORG)
    assert (head.seq, head.hash) == (4, entries[-1].hash)


def test_the_stored_hash_matches_the_stored_content():
    e = append(1)[0]
    e.refresh_from_db()
    data = EntryData(
        chain=e.chain, seq=e.seq, occurred_at=e.occurred_at.astimezone(dt.UTC).isoformat(), actor=e.actor,
        channel=e.channel, operation=e.operation, objects=e.refs, details=e.details,
        payload_digest=e.payload_digest, prev_hash=e.prev_hash,
    )
    assert entry_hash(data) == e.hash


def test_payload_is_digested_never_stored():
    e = append(1)[0]
    row = Entry.objects.filter(pk=e.pk).values().get()
    assert "example.org" not in repr(row)
    assert len(e.payload_digest) == 64


def test_each_organisation_has_its_own_chain():
    append(2, chain=1)
    append(3, chain=2)
    append(1, chain=1, start=3)
    assert list(Entry.objects.filter(chain=1).values_list("seq", flat=True)) == [1, 2, 3]
    assert list(Entry.objects.filter(chain=2).values_list("seq", flat=True)) == [1, 2, 3]
    assert all(v.ok for v in verify_all())


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused():
    with pytest.raises(JournalError, match="inside the service's transaction"):
        journal_append(actor=Actor.cli(), operation="test.op", organisation_id=ORG)
    assert not Entry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_entry_and_no_gap():
    append(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        journal_append(actor=Actor.cli(), operation="test.lost", organisation_id=ORG)
        raise RuntimeError("the service failed after journaling")
    append(1, start=2)
    assert list(Entry.objects.filter(chain=ORG).values_list("seq", "operation")) == [
        (1, "test.op1"), (2, "test.op2")
    ]
    assert verify()[0] == 0


# --- verify: intact -------------------------------------------------------------------------


def test_verify_passes_on_an_intact_journal():
    append(5)
    append(2, chain=0)
    code, out, err = verify()
    assert code == 0, out + err
    assert f"chain {ORG}: 5 entries, OK" in out
    assert "journal OK: 7 entries in 2 chain(s)" in out


def test_verify_passes_on_an_empty_journal():
    code, out, _ = verify()
    assert code == 0
    assert "journal OK: 0 entries in 0 chain(s)" in out


# --- verify: tampered rows ------------------------------------------------------------------


def assert_broken(seq: int, reason: str):
    code, out, err = verify()
    assert code == 1, out
    assert broken_at(seq) in out, out
    assert reason in out, out
    assert "journal verification FAILED on 1 chain(s)" in err


@pytest.mark.parametrize("change", [{"details": {"i": 999}}, {"operation": "test.innocent"},
                                    {"actor": "user:1"}, {"refs": ["status.thing:999"]}])
def test_an_edited_entry_is_named(change):
    append(5)
    Entry.objects.filter(chain=ORG, seq=3).update(**change)
    assert_broken(3, "edited")


def test_an_edited_timestamp_is_named():
    entries = append(5)
    Entry.objects.filter(chain=ORG, seq=2).update(occurred_at=entries[1].occurred_at.replace(year=2001))
    assert_broken(2, "edited")


def test_a_deleted_entry_is_named():
    append(5)
    Entry.objects.filter(chain=ORG, seq=3).delete()
    assert_broken(3, "missing (deleted) entry")


def test_the_first_deleted_entry_is_named():
    append(6)
    Entry.objects.filter(chain=ORG, seq__in=[2, 5]).delete()
    assert_broken(2, "deleted")


def test_swapped_entries_are_named():
    append(5)
    # Swap the numbers of entries 2 and 3 (through a free number: (chain, seq) is unique).
    Entry.objects.filter(chain=ORG, seq=2).update(seq=1000)
    Entry.objects.filter(chain=ORG, seq=3).update(seq=2)
    Entry.objects.filter(chain=ORG, seq=1000).update(seq=3)
    assert_broken(2, "link to the previous entry is broken")


def test_truncation_is_named_since_the_head_keeps_the_count():
    append(5)
    Entry.objects.filter(chain=ORG, seq__gte=4).delete()
    assert Head.objects.get(chain=ORG).seq == 5
    assert_broken(4, "chain truncated: 5 entries recorded, 3 found")


def test_a_chain_deleted_whole_is_named():
    append(3)
    Entry.objects.filter(chain=ORG).delete()
    assert_broken(1, "chain truncated: 3 entries recorded, 0 found")


def test_an_entry_inserted_in_the_middle_is_named():
    entries = append(5)
    # Renumber 4 and 5 to 5 and 6 (from the top, seq is unique), then forge a new 4 that
    # correctly links to 3: the old 4, now 5, no longer links to it.
    for seq in (5, 4):
        Entry.objects.filter(chain=ORG, seq=seq).update(seq=seq + 1)
    forge(seq=4, prev_hash=entries[2].hash)
    assert_broken(5, "link to the previous entry is broken")


def test_an_entry_appended_behind_the_heads_back_is_named():
    entries = append(3)
    forge(seq=4, prev_hash=entries[-1].hash)
    assert_broken(4, "entries beyond the recorded head (3)")


def test_a_fork_is_named():
    entries = append(3)
    # A second entry claiming to follow entry 2, in place of entry 3.
    Entry.objects.filter(chain=ORG, seq=3).delete()
    forge(seq=3, prev_hash=entries[1].hash, operation="test.fork")
    assert_broken(3, "does not match the recorded head")


def test_a_rewritten_tail_is_named_by_the_head():
    entries = append(4)
    Entry.objects.filter(chain=ORG, seq__gte=3).delete()
    prev = entries[1].hash
    for seq in (3, 4):
        prev = forge(seq=seq, prev_hash=prev, operation="test.rewritten").hash
    assert_broken(4, "does not match the recorded head")


def test_only_the_tampered_chain_is_reported():
    append(3)
    append(3, chain=0)
    Entry.objects.filter(chain=ORG, seq=1).update(details={})
    code, out, err = verify()
    assert code == 1
    assert broken_at(1) in out
    assert "chain 0: 3 entries, OK" in out


def forge(*, seq: int, prev_hash: str, operation: str = "test.forged") -> Entry:
    """Write a well-formed entry straight into the table, as someone with database access could."""
    e = Entry(chain=ORG, seq=seq, occurred_at=Entry.objects.first().occurred_at, actor="cli",
              channel="cli", operation=operation, refs=[], details={}, payload_digest="0" * 64,
              prev_hash=prev_hash)
    data = EntryData(chain=ORG, seq=seq, occurred_at=e.occurred_at.astimezone(dt.UTC).isoformat(), actor="cli",
                     channel="cli", operation=operation, objects=[], details={},
                     payload_digest="0" * 64, prev_hash=prev_hash)
    e.hash = entry_hash(data)
    e.save()
    return e


# --- what the database streams back is read exactly ------------------------------------------

AWKWARD = "t\tn\nr\r b\\s \\N \\t \"q\" é 東京 🎉 \x07\x01\x1f\x7f"  # short: actor and operation hold 80


def test_awkward_text_in_every_field_verifies_and_an_edit_of_it_is_named():
    """PostgreSQL streams rows with COPY, whose text format escapes tabs, newlines and
    backslashes: every character must come back as stored (else an intact journal fails)."""
    for i in range(1, 4):
        with transaction.atomic():
            journal_append(
                actor=Actor(ref=f"user:{AWKWARD}", channel="counter"), operation=f"test.{AWKWARD}.{i}",
                objects=[f"status.thing:{AWKWARD}", "plain"],
                details={AWKWARD: [AWKWARD, {"z": 1, "a": None, "é": True, "n": -12, "f": 1.5}], "i": i},
                organisation_id=ORG,
            )
    code, out, err = verify()
    assert code == 0, out + err
    assert f"chain {ORG}: 3 entries, OK" in out
    Entry.objects.filter(chain=ORG, seq=2).update(operation=f"test.{AWKWARD}.2 ")
    assert_broken(2, "edited")


def test_a_broken_chain_does_not_disturb_the_chains_read_after_it():
    append(3)  # chain 42, broken at its first entry
    append(4, chain=ORG + 1)
    Entry.objects.filter(chain=ORG, seq=1).update(details={"i": 0})
    code, out, _err = verify()
    assert code == 1
    assert broken_at(1) in out
    assert f"chain {ORG + 1}: 4 entries, OK" in out


def test_verifying_leaves_the_callers_query_plans_alone():
    """PostgreSQL reads each chain along its index (sorts and bitmap scans off for the
    transaction); the settings are put back afterwards, also when a chain is broken."""
    from django.db import connection

    def plan_settings():
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_sort'), current_setting('enable_bitmapscan')")
            return cursor.fetchone()

    append(3)
    with transaction.atomic():
        before = plan_settings()
        assert all(v.ok for v in verify_all())
        Entry.objects.filter(chain=ORG, seq=1).update(details={"i": 0})
        assert not verify_all()[0].ok
        assert plan_settings() == before
