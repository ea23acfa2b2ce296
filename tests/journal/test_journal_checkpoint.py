"""Checkpoints: published heads that a later verification must still extend.

An attacker with the database can rewrite entries and the head row together so that the journal
is consistent with itself; only a checkpoint kept elsewhere shows that it changed.
"""

import datetime as dt
import io
import os
import stat

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings

from guichet.common.actor import Actor
from guichet.journal import checkpoint as cp
from guichet.journal.chain import EntryData, entry_hash
from guichet.journal.models import Entry, Head
from guichet.journal.services import journal_append

pytestmark = pytest.mark.django_db
ORG = 42


def append(n: int, chain: int = ORG, op: str = "test.op") -> list[Entry]:
    out = []
    for i in range(n):
        with transaction.atomic():
            out.append(journal_append(actor=Actor.cli(), operation=f"{op}{i}", details={"i": i}, organisation_id=chain))
    return out


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("journal", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as e:
        code = e.code
    return code, out.getvalue(), err.getvalue()


def take() -> str:
    code, out, _ = run("checkpoint")
    assert code == 0
    return out


def rewrite_from(seq: int, *, chain: int = ORG, operation: str = "test.rewritten") -> None:
    """What an attacker with the database does: replace entries from ``seq`` on with forged ones
    that link correctly, and move the head row along, so that plain ``verify`` passes."""
    rows = list(Entry.objects.filter(chain=chain).order_by("seq"))
    last = rows[-1].seq
    Entry.objects.filter(chain=chain, seq__gte=seq).delete()
    prev = rows[seq - 2].hash if seq > 1 else "0" * 64
    for s in range(seq, last + 1):
        data = EntryData(chain=chain, seq=s, occurred_at=rows[0].occurred_at.astimezone(dt.UTC).isoformat(),
                         actor="cli", channel="cli", operation=operation, objects=[], details={},
                         payload_digest="0" * 64, prev_hash=prev)
        prev = entry_hash(data)
        Entry.objects.create(chain=chain, seq=s, occurred_at=rows[0].occurred_at, actor="cli", channel="cli",
                             operation=operation, refs=[], details={}, payload_digest="0" * 64,
                             prev_hash=data.prev_hash, hash=prev)
    Head.objects.filter(chain=chain).update(seq=last, hash=prev)


# --- taking and publishing ------------------------------------------------------------------


def test_checkpoint_prints_each_chain_count_and_last_hash():
    a = append(3)
    b = append(2, chain=0)
    text = take()
    parsed = cp.parse(text)
    assert parsed.chains == {0: (2, b[-1].hash), ORG: (3, a[-1].hash)}
    assert text.startswith("guichet-journal-checkpoint 1\ntime ")
    assert f"chain {ORG} 3 {a[-1].hash}" in text


def test_checkpoint_written_to_a_dated_file_in_a_directory(tmp_path):
    append(2)
    code, out, err = run("checkpoint", "--output", str(tmp_path))
    assert code == 0
    [written] = list(tmp_path.iterdir())
    assert written.name.startswith("journal-checkpoint-") and written.read_text() == out
    assert f"written to {written}" in err


@pytest.mark.parametrize("given", ["checkpoints", "new/checkpoints/"])
def test_checkpoint_output_to_a_directory_not_made_yet_creates_it(tmp_path, given):
    """As in the guide's nightly job: the first night, the directory does not exist yet. It is
    created and receives a dated file (not a file named like the directory, overwritten every
    night)."""
    append(2)
    code, out, _err = run("checkpoint", "--output", f"{tmp_path}/{given}")
    assert code == 0
    directory = tmp_path / given.rstrip("/")
    assert directory.is_dir()
    [written] = list(directory.iterdir())
    assert written.name.startswith("journal-checkpoint-") and written.read_text() == out


def test_checkpoint_output_to_a_file_name(tmp_path):
    append(2)
    code, out, _err = run("checkpoint", "--output", str(tmp_path / "latest.txt"))
    assert code == 0 and (tmp_path / "latest.txt").read_text() == out


@override_settings(GUICHET_JOURNAL_WITNESSES=["maire@example.org", "dpo@example.org"])
def test_checkpoint_is_mailed_to_the_witnesses():
    entries = append(2)
    code, out, err = run("checkpoint", "--mail")
    assert code == 0 and "e-mailed to 2 witness(es)" in err
    [message] = mail.outbox
    assert message.to == ["maire@example.org", "dpo@example.org"]
    assert "journal checkpoint" in message.subject
    assert entries[-1].hash in message.body and out in message.body
    # What a witness keeps is enough to check the journal later.
    kept = message.body.split("----- BEGIN CHECKPOINT -----\n")[1].split("----- END CHECKPOINT -----")[0]
    assert run("verify", "--checkpoint", kept)[0] == 0


@override_settings(GUICHET_JOURNAL_WITNESSES=[])
def test_mail_without_witnesses_is_a_clear_error():
    append(1)
    with pytest.raises(CommandError, match="no witness configured"):
        call_command("journal", "checkpoint", "--mail", stdout=io.StringIO(), stderr=io.StringIO())


def test_no_checkpoint_of_a_broken_journal():
    append(3)
    Entry.objects.filter(chain=ORG, seq=2).update(details={"i": 99})
    with pytest.raises(CommandError, match=r"journal is broken, no checkpoint taken: chain 42 at entry #2"):
        call_command("journal", "checkpoint", stdout=io.StringIO())


# --- verifying against a checkpoint ---------------------------------------------------------


def test_a_journal_that_grew_since_the_checkpoint_is_consistent_with_it(tmp_path):
    append(3)
    path = tmp_path / "cp.txt"
    path.write_text(take())
    append(4)
    append(1, chain=7)  # a chain created since
    code, out, _ = run("verify", "--checkpoint", str(path))
    assert code == 0, out
    assert "journal OK: 8 entries in 2 chain(s), consistent with 1 checkpoint(s)" in out


def test_checkpoint_given_as_one_line_of_text():
    append(2)
    one_line = cp.parse(take()).one_line()
    assert "\n" not in one_line
    assert run("verify", "--checkpoint", one_line)[0] == 0


def test_a_rewritten_history_passes_plain_verify_but_not_the_checkpoint():
    append(5)
    checkpoint = take()
    rewrite_from(3)
    assert run("verify")[0] == 0  # consistent with itself: only the checkpoint can tell
    code, out, err = run("verify", "--checkpoint", checkpoint)
    assert code == 1
    assert f"chain {ORG}: BROKEN at entry #5: differs from the checkpoint of" in out
    assert "history forked or rewritten at or before this entry" in out
    assert "journal verification FAILED on 1 chain(s)" in err


def test_a_journal_shortened_since_the_checkpoint_is_named():
    append(6)
    checkpoint = take()
    # Delete the last three entries and move the head back: plain verify passes.
    Entry.objects.filter(chain=ORG, seq__gte=4).delete()
    Head.objects.filter(chain=ORG).update(seq=3, hash=Entry.objects.get(chain=ORG, seq=3).hash)
    assert run("verify")[0] == 0
    code, out, _ = run("verify", "--checkpoint", checkpoint)
    assert code == 1
    assert f"chain {ORG}: BROKEN at entry #4: journal shortened since the checkpoint of" in out
    assert "it recorded 6 entries, 3 found" in out


def test_a_chain_deleted_whole_since_the_checkpoint_is_named():
    append(2)
    append(2, chain=0)
    checkpoint = take()
    Entry.objects.filter(chain=ORG).delete()
    Head.objects.filter(chain=ORG).delete()
    code, out, _ = run("verify", "--checkpoint", checkpoint)
    assert code == 1
    assert f"chain {ORG}: BROKEN at entry #1: journal shortened since" in out
    assert "chain 0: 2 entries, OK" in out


def test_a_checkpoint_of_another_history_is_a_fork():
    """Two histories share their first two entries and then diverge: the checkpoint taken on
    one does not fit the other, from the first entry it covers that differs."""
    append(2)
    append(2, op="test.history-a")
    checkpoint_a = take()
    Entry.objects.filter(chain=ORG, seq__gte=3).delete()
    Head.objects.filter(chain=ORG).update(seq=2, hash=Entry.objects.get(chain=ORG, seq=2).hash)
    append(3, op="test.history-b")  # history B: 5 entries, longer than A
    code, out, _ = run("verify", "--checkpoint", checkpoint_a)
    assert code == 1
    assert f"chain {ORG}: BROKEN at entry #4: differs from the checkpoint" in out


def test_several_checkpoints_show_when_the_history_changed():
    append(2)
    early = take()
    append(3)
    late = take()
    rewrite_from(4)
    code, out, _ = run("verify", "--checkpoint", early, "--checkpoint", late)
    assert code == 1
    first, second = out.split("against ")[1:]
    assert f"chain {ORG}: 5 entries, OK" in first  # still extends the early one
    assert f"chain {ORG}: BROKEN at entry #5: differs from" in second


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("guichet-journal-checkpoint 1\nchain 1 2 " + "a" * 64, "has no 'time' line"),
        ("guichet-journal-checkpoint 1\ntime yesterday", "'yesterday' is not an ISO 8601 time"),
        ("guichet-journal-checkpoint 1\ntime 2026-01-01T00:00:00+00:00\nchain 1 two abc", "line 3: expected 'chain"),
        ("/nonexistent/checkpoint.txt", "no checkpoint file '/nonexistent/checkpoint.txt'"),
    ],
)
def test_an_unreadable_checkpoint_is_a_clear_error(text, message):
    append(1)
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("journal", "verify", "--checkpoint", text, stdout=io.StringIO())


# --- signed checkpoints ---------------------------------------------------------------------


def test_signed_checkpoints(tmp_path):
    key = tmp_path / "journal-signing.pem"
    code, out, _ = run("signing-key", str(key))
    assert code == 0 and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    append(3)
    with override_settings(GUICHET_JOURNAL_SIGNING_KEY_FILE=str(key)):
        signed = take()
    assert "\nsignature ed25519 " in signed
    pub = f"{key}.pub"
    code, out, _ = run("verify", "--checkpoint", signed, "--public-key", pub)
    assert code == 0 and "checkpoint signature(s) valid (1)" in out
    # A checkpoint altered to match a shortened journal no longer carries a valid signature.
    forged = signed.replace(f"chain {ORG} 3 ", f"chain {ORG} 2 ")
    with pytest.raises(CommandError, match="signature does not match"):
        call_command("journal", "verify", "--checkpoint", forged, "--public-key", pub, stdout=io.StringIO())
    other = tmp_path / "other.pem"
    run("signing-key", str(other))
    with pytest.raises(CommandError, match="signature does not match"):
        call_command("journal", "verify", "--checkpoint", signed, "--public-key", f"{other}.pub", stdout=io.StringIO())


def test_signing_key_is_never_overwritten(tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("precious")
    with pytest.raises(CommandError, match="already exists"):
        call_command("journal", "signing-key", str(key), stdout=io.StringIO())
    assert key.read_text() == "precious"
