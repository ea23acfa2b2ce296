"""The pure hash-chain rules: any single tampering of a valid chain is found at the right entry."""

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from guichet.journal.chain import GENESIS, Anchor, EntryData, Problem, entry_hash, verify_chain

CHAIN = 7


def build(n: int, chain: int = CHAIN, ops=None) -> list[EntryData]:
    out, prev = [], GENESIS
    for i in range(1, n + 1):
        e = EntryData(
            chain=chain, seq=i, occurred_at=f"2024-05-{(i % 28) + 1:02d}T08:00:00+00:00", actor="cli",
            channel="cli", operation=(ops[i - 1] if ops else f"op.{i}"), objects=[f"status.x:{i}"],
            details={"n": i}, payload_digest=f"{i:064x}", prev_hash=prev,
        )
        e = dataclasses.replace(e, hash=entry_hash(e))
        out.append(e)
        prev = e.hash
    return out


def relink(e: EntryData, **changes) -> EntryData:
    """An entry changed and re-hashed by someone who knows the hash rule."""
    e = dataclasses.replace(e, **changes, hash="")
    return dataclasses.replace(e, hash=entry_hash(e))


def test_valid_chain_verifies_with_its_count_and_last_hash():
    entries = build(5)
    v = verify_chain(CHAIN, entries, head_seq=5, head_hash=entries[-1].hash)
    assert v.ok and v.count == 5 and v.last_hash == entries[-1].hash


def test_empty_chain_is_valid():
    v = verify_chain(CHAIN, [], head_seq=0)
    assert v.ok and v.count == 0 and v.last_hash == GENESIS


def test_hash_covers_every_field():
    e = build(1)[0]
    for field, value in [
        ("chain", 8), ("seq", 2), ("occurred_at", "2024-05-01T08:00:01+00:00"), ("actor", "user:2"),
        ("channel", "web"), ("operation", "other"), ("objects", ["status.x:9"]), ("details", {"n": 2}),
        ("payload_digest", "f" * 64), ("prev_hash", "1" * 64),
    ]:
        assert entry_hash(dataclasses.replace(e, **{field: value})) != e.hash, field


def test_a_rewritten_tail_is_caught_by_the_recorded_head():
    entries = build(5)
    head = entries[-1].hash
    forged = entries[:2]
    for e in entries[2:]:
        forged.append(relink(e, details={"forged": True}, prev_hash=forged[-1].hash))
    v = verify_chain(CHAIN, forged, head_seq=5, head_hash=head)
    assert v.problem is not None and v.problem.seq == 5
    assert "head" in v.problem.reason


EDITABLE = {
    "occurred_at": st.just("1999-01-01T00:00:00+00:00"),
    "actor": st.text(min_size=1, max_size=10),
    "channel": st.sampled_from(["web", "api", "system"]),
    "operation": st.text(min_size=1, max_size=20),
    "objects": st.lists(st.text(max_size=8), max_size=3),
    "details": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    "payload_digest": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
}


@st.composite
def mutated_chain(draw):
    """A valid chain of n entries, one mutation of it, and the seq verify must name."""
    n = draw(st.integers(min_value=1, max_value=12))
    entries = build(n)
    kind = draw(st.sampled_from(["edit", "delete", "swap", "truncate", "insert", "duplicate", "relink"]))
    k = draw(st.integers(min_value=1, max_value=n))  # 1-based position
    if kind == "edit":
        field = draw(st.sampled_from(sorted(EDITABLE)))
        value = draw(EDITABLE[field].filter(lambda v: v != getattr(entries[k - 1], field)))
        entries[k - 1] = dataclasses.replace(entries[k - 1], **{field: value})
        return kind, n, entries, k
    if kind == "delete":
        del entries[k - 1]
        return kind, n, entries, k
    if kind == "swap":
        if n < 2:
            return kind, n, entries[:0], 1
        k = min(k, n - 1)
        a, b = entries[k - 1], entries[k]
        # The rows keep their content but trade their numbers, as an UPDATE of seq would.
        entries[k - 1], entries[k] = dataclasses.replace(b, seq=a.seq), dataclasses.replace(a, seq=b.seq)
        return kind, n, entries, k
    if kind == "truncate":
        return kind, n, entries[: k - 1], k
    if kind == "insert":
        # A well-formed entry slipped in after entry k-1, later ones renumbered.
        prev = entries[k - 2].hash if k > 1 else GENESIS
        forged = relink(entries[k - 1], operation="forged", prev_hash=prev)
        rest = [dataclasses.replace(e, seq=e.seq + 1) for e in entries[k - 1:]]
        return kind, n, [*entries[: k - 1], forged, *rest], k + 1
    if kind == "duplicate":
        return kind, n, [*entries[:k], entries[k - 1], *entries[k:]], k
    # relink: an entry edited and re-hashed, so only the next link (or the head) shows it
    entries[k - 1] = relink(entries[k - 1], details={"forged": True})
    if k == n:
        return "relink-last", n, entries, n
    return kind, n, entries, k + 1


@settings(max_examples=300, deadline=None)
@given(mutated_chain())
def test_any_single_mutation_is_detected_at_the_right_entry(case):
    kind, n, entries, expected = case
    original_head = build(n)[-1].hash
    v = verify_chain(CHAIN, entries, head_seq=n, head_hash=original_head)
    assert not v.ok, f"{kind} not detected"
    assert v.problem.seq == expected, (kind, v.problem)
    # Every entry before the named one was verified (a duplicate repeats an entry already
    # verified; a re-hashed last entry is only caught by the recorded head).
    if kind in ("duplicate", "relink-last"):
        assert v.count == expected
    else:
        assert v.count == expected - 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=0, max_size=15))
def test_any_untouched_chain_verifies(ops):
    entries = build(len(ops), ops=ops or None)
    head = entries[-1].hash if entries else GENESIS
    assert verify_chain(CHAIN, entries, head_seq=len(entries), head_hash=head).ok


def test_two_heads_a_branch_in_the_chain_is_named_where_it_forks():
    """Entries 3 and 4 both claim to follow entry 2 (two heads grown from one parent)."""
    entries = build(3)
    branch = relink(entries[2], seq=4, operation="op.branch", prev_hash=entries[1].hash)
    v = verify_chain(CHAIN, [*entries, branch], head_seq=4, head_hash=branch.hash)
    assert v.problem == Problem(4, "link to the previous entry is broken (reordered, inserted or forked)")
    assert v.count == 3


def test_an_anchor_from_another_history_is_a_fork():
    ours = build(4)
    theirs = build(4, ops=["op.1", "op.2", "op.other", "op.4"])
    anchor = Anchor(count=3, hash=theirs[2].hash, label="their checkpoint")
    v = verify_chain(CHAIN, ours, head_seq=4, head_hash=ours[-1].hash, anchor=anchor)
    assert v.problem.seq == 3 and v.problem.reason.startswith("differs from their checkpoint")


def test_an_anchor_beyond_the_chain_is_a_shortened_chain():
    entries = build(5)
    anchor = Anchor(count=5, hash=entries[-1].hash)
    v = verify_chain(CHAIN, entries[:3], head_seq=3, head_hash=entries[2].hash, anchor=anchor)
    assert v.problem == Problem(4, "journal shortened since the checkpoint: it recorded 5 entries, 3 found")


def test_a_chain_that_extends_its_anchor_verifies():
    entries = build(6)
    anchor = Anchor(count=4, hash=entries[3].hash)
    assert verify_chain(CHAIN, entries, head_seq=6, head_hash=entries[-1].hash, anchor=anchor).ok


# --- the verifier's fast paths write exactly the canonical JSON -----------------------------

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**12), st.integers(1, 10**12), st.text(), st.text(), st.text(), st.text(),
       st.lists(st.text()), st.dictionaries(st.text(), ANY_JSON, max_size=4), st.text(), st.text())
def test_body_text_is_the_canonical_json_of_the_body(chain, seq, at, actor, channel, op, objects, details, digest, prev):
    from guichet.common.canonical import canonical_json
    from guichet.journal.chain import body_text

    expected = canonical_json([chain, seq, at, actor, channel, op, objects, details, digest, prev]).decode()
    assert body_text(chain, seq, at, actor, channel, op, canonical_json(objects).decode(),
                     canonical_json(details).decode(), digest, prev) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(ANY_JSON, max_size=4) | st.lists(st.text(), max_size=4), st.sampled_from(["pg", "django", "canonical"]))
def test_stored_lists_and_dicts_are_read_back_canonical(value, style):
    """Whatever the database wrote (PostgreSQL's jsonb text: ', ' and ': '; Django's JSONField
    on SQLite: json.dumps defaults, ASCII escapes), the verifier reads the canonical form."""
    import json

    from guichet.common.canonical import canonical_json
    from guichet.journal.selectors import _canonical, _canonical_list

    if style == "pg":
        stored = json.dumps(value, ensure_ascii=False)
    elif style == "django":
        stored = json.dumps(value)
    else:
        stored = canonical_json(value).decode()
    assert _canonical_list(stored) == canonical_json(value).decode()
    as_dict = {"k": value, "a": 1}
    assert _canonical(json.dumps(as_dict)) == canonical_json(as_dict).decode()


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)))
def test_stored_times_are_read_back_as_hashed(moment):
    """The time text PostgreSQL streams (a UTC timestamp, fraction without trailing zeros) and
    the text Django stores in SQLite both give back ``isoformat()`` of the aware UTC time."""
    from guichet.journal.selectors import _iso

    hashed = moment.replace(tzinfo=dt.UTC).isoformat()
    sqlite_text = moment.isoformat(" ")
    pg_text = sqlite_text.rstrip("0").rstrip(".") if "." in sqlite_text else sqlite_text
    assert _iso(pg_text) == hashed
    assert _iso(sqlite_text) == hashed


def copy_text(value: str) -> str:
    """How PostgreSQL's COPY TO (text format) writes a column (copyto.c, CopyAttributeOutText)."""
    out = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    return "".join(out.get(c, c) for c in value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="\x00")))
def test_copy_text_is_read_back_exactly(value):
    from guichet.journal.selectors import _copy_field

    assert _copy_field(copy_text(value)) == value
