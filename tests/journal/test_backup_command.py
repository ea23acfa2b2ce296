"""``guichet backup``: clear failures that change nothing, progress and summaries.

Runs on the suite's database (SQLite, and PostgreSQL in CI): the target of each restore is a
new empty database of the same kind.
"""

import io
import json
import os
import stat

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings

from guichet.common.actor import Actor
from guichet.journal import checkpoint as cp
from guichet.journal.backup import Database, _tables
from guichet.journal.crypto import HEADER_SIZE, key_id, load_key_file
from guichet.journal.models import Entry
from guichet.journal.services import journal_append

from .backup_helpers import empty_target

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def made(tmp_path, settings):
    """A small journal, one uploaded file, a key and an archive of them."""
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "receipt.pdf").write_bytes(b"%PDF receipt")
    for i in range(5):
        with transaction.atomic():
            # Text over two lines, with a tab and a backslash: one row all the same when the
            # rows of a PostgreSQL dump are counted.
            journal_append(actor=Actor.cli(), operation=f"test.op{i}\nsecond line\t\\",
                           details={"i": i, "note": "two\nlines"}, organisation_id=3)
    key = tmp_path / "backup.key"
    call_command("backup", "keygen", str(key), stdout=io.StringIO())
    archive = tmp_path / "a.gbak"
    out = io.StringIO()
    call_command("backup", "create", str(archive), "--key-file", str(key), stdout=out)
    return {"key": key, "archive": archive, "create_output": out.getvalue(), "tmp": tmp_path}


def restore(archive, key, url, media) -> str:
    out = io.StringIO()
    call_command("backup", "restore", str(archive), "--key-file", str(key), "--database-url", url,
                 "--media-root", str(media), stdout=out)
    return out.getvalue()


def assert_untouched(target: Database, media) -> None:
    """The target database is still empty (SQLite: not even created) and no file was written."""
    if target.engine == "sqlite":
        assert not os.path.exists(target.name)
        assert not [p for p in os.listdir(os.path.dirname(target.name)) if p.startswith(".restored")]
    else:
        with target.connect() as conn:
            assert _tables(conn.cursor(), target.engine) == []
            conn.rollback()
    assert not media.exists() or not any(media.iterdir())


# --- keys -----------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_and_never_overwrites(tmp_path):
    path = tmp_path / "k"
    out = io.StringIO()
    call_command("backup", "keygen", str(path), stdout=out)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert f"backup key {key_id(load_key_file(path))} written to {path} (mode 600)" in out.getvalue()
    before = path.read_bytes()
    with pytest.raises(CommandError, match="already exists: refusing to overwrite a key"):
        call_command("backup", "keygen", str(path), stdout=io.StringIO())
    assert path.read_bytes() == before


@override_settings(GUICHET_BACKUP_KEY_FILE="", GUICHET_BACKUP_KEY="")
def test_no_key_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="create FAILED: no backup key: give --key-file FILE"):
        call_command("backup", "create", str(tmp_path / "a.gbak"), stdout=io.StringIO())
    assert not (tmp_path / "a.gbak").exists()


def test_key_from_the_environment(made):
    key_text = made["key"].read_text()
    with override_settings(GUICHET_BACKUP_KEY_FILE="", GUICHET_BACKUP_KEY=key_text):
        out = io.StringIO()
        call_command("backup", "verify", str(made["archive"]), stdout=out)
    assert "archive OK" in out.getvalue()


# --- create ---------------------------------------------------------------------------------


def test_create_reports_progress_and_a_summary_with_the_checkpoint(made):
    out = made["create_output"]
    assert "dumping the database" in out and "encrypting into" in out
    assert f"backup written: {made['archive']}" in out
    assert "  files        1" in out
    assert "  journal      5 entries in 1 chain(s)" in out
    assert "  field key    key " in out and "NOT in the archive" in out  # a restore needs it too
    head = Entry.objects.get(chain=3, seq=5).hash
    assert f"chain 3 5 {head}" in out
    assert stat.S_IMODE(os.stat(made["archive"]).st_mode) == 0o600


def test_create_never_overwrites_an_archive(made):
    before = made["archive"].read_bytes()
    with pytest.raises(CommandError, match="already exists: choose another name"):
        call_command("backup", "create", str(made["archive"]), "--key-file", str(made["key"]), stdout=io.StringIO())
    assert made["archive"].read_bytes() == before


def test_create_into_a_missing_directory(made):
    with pytest.raises(CommandError, match="directory .*/nowhere does not exist"):
        call_command("backup", "create", str(made["tmp"] / "nowhere" / "a.gbak"), "--key-file", str(made["key"]),
                     stdout=io.StringIO())


def test_create_with_a_dated_name_in_a_directory(made):
    (made["tmp"] / "daily").mkdir()
    call_command("backup", "create", "--directory", str(made["tmp"] / "daily"), "--key-file", str(made["key"]),
                 stdout=io.StringIO())
    [archive] = list((made["tmp"] / "daily").iterdir())
    assert archive.name.startswith("guichet-") and archive.name.endswith("Z.gbak")


# --- verify ---------------------------------------------------------------------------------


def test_verify_reports_what_the_archive_holds(made):
    out = io.StringIO()
    call_command("backup", "verify", str(made["archive"]), "--key-file", str(made["key"]), stdout=out)
    text = out.getvalue()
    assert "authenticated and decrypted: every checksum matches (2 files)" in text
    assert f"archive OK: {made['archive']}" in text
    assert "  journal      5 entries in 1 chain(s)" in text


def test_verify_counts_the_rows_of_the_database_in_the_archive(made, monkeypatch):
    """The manifest's row counts are checked against the dump itself, PostgreSQL included: an
    archive whose manifest claims one journal entry more than its database holds is refused,
    naming the table."""
    from guichet.journal import backup as bk

    out = io.StringIO()
    call_command("backup", "verify", str(made["archive"]), "--key-file", str(made["key"]), stdout=out)
    assert "row counts" in out.getvalue() and "match the manifest" in out.getvalue()

    real = bk.row_counts
    monkeypatch.setattr(bk, "row_counts", lambda cursor, engine: {**real(cursor, engine), "journal_entry": 6})
    lying = made["tmp"] / "lying.gbak"
    call_command("backup", "create", str(lying), "--key-file", str(made["key"]), stdout=io.StringIO())
    monkeypatch.setattr(bk, "row_counts", real)
    with pytest.raises(CommandError) as failed:
        call_command("backup", "verify", str(lying), "--key-file", str(made["key"]), stdout=io.StringIO())
    assert str(failed.value) == (
        "verify FAILED: row counts differ from the manifest in 1 table(s): journal_entry: 6 expected, 5 found"
    )


def corrupt(made, how: str):
    blob = bytearray(made["archive"].read_bytes())
    bad = made["tmp"] / f"{how}.gbak"
    if how == "truncated":
        blob = blob[:-100]
    elif how == "altered":
        blob[HEADER_SIZE + len(blob) // 2 - HEADER_SIZE] ^= 0x40
    bad.write_bytes(bytes(blob))
    return bad


@pytest.mark.parametrize(("how", "message"), [("truncated", "truncated"), ("altered", "(truncated or )?altered")])
def test_verify_refuses_a_damaged_archive(made, how, message):
    with pytest.raises(CommandError, match=f"verify FAILED: the archive is {message}"):
        call_command("backup", "verify", str(corrupt(made, how)), "--key-file", str(made["key"]), stdout=io.StringIO())


def test_verify_with_the_wrong_key(made):
    other = made["tmp"] / "other.key"
    call_command("backup", "keygen", str(other), stdout=io.StringIO())
    with pytest.raises(CommandError, match="verify FAILED: wrong key"):
        call_command("backup", "verify", str(made["archive"]), "--key-file", str(other), stdout=io.StringIO())


def test_verify_a_missing_or_foreign_file(made):
    with pytest.raises(CommandError, match="archive .*/missing.gbak not found"):
        call_command("backup", "verify", str(made["tmp"] / "missing.gbak"), "--key-file", str(made["key"]),
                     stdout=io.StringIO())
    with pytest.raises(CommandError, match="not a Guichet backup archive"):
        call_command("backup", "verify", str(made["key"]), "--key-file", str(made["key"]), stdout=io.StringIO())


# --- restore: each failure is clear and changes nothing -------------------------------------


def test_restore_with_the_wrong_key_changes_nothing(made):
    other = made["tmp"] / "other.key"
    call_command("backup", "keygen", str(other), stdout=io.StringIO())
    media = made["tmp"] / "restored-media"
    with empty_target(made["tmp"]) as (target, url), pytest.raises(CommandError, match="restore FAILED: wrong key"):
        try:
            restore(made["archive"], other, url, media)
        finally:
            assert_untouched(target, media)


@pytest.mark.parametrize(("how", "message"), [("truncated", "truncated"), ("altered", "(truncated or )?altered")])
def test_restore_of_a_damaged_archive_changes_nothing(made, how, message):
    media = made["tmp"] / "restored-media"
    with empty_target(made["tmp"]) as (target, url), pytest.raises(CommandError, match=f"the archive is {message}"):
        try:
            restore(corrupt(made, how), made["key"], url, media)
        finally:
            assert_untouched(target, media)


def test_restore_into_a_non_empty_database_changes_nothing(made):
    before = list(Entry.objects.values_list("chain", "seq", "hash"))
    with pytest.raises(CommandError, match=r"restore FAILED: the target database .* is not empty \(\d+ tables"):
        # No --database-url: the configured database, which is the live one.
        call_command("backup", "restore", str(made["archive"]), "--key-file", str(made["key"]),
                     "--media-root", str(made["tmp"] / "m"), stdout=io.StringIO())
    assert list(Entry.objects.values_list("chain", "seq", "hash")) == before


def test_restore_into_a_non_empty_files_directory_changes_nothing(made):
    media = made["tmp"] / "busy-media"
    media.mkdir()
    (media / "other.pdf").write_bytes(b"someone else's")
    with empty_target(made["tmp"]) as (target, url):
        with pytest.raises(CommandError, match="uploaded-files directory .*busy-media is not empty"):
            restore(made["archive"], made["key"], url, media)
        if target.engine == "sqlite":
            assert not os.path.exists(target.name)
    assert [p.name for p in media.iterdir()] == ["other.pdf"]


def test_restore_reports_progress_and_a_summary(made):
    media = made["tmp"] / "restored-media"
    with empty_target(made["tmp"]) as (target, url):
        text = restore(made["archive"], made["key"], url, media)
        with target.connect() as conn:
            conn.cursor().execute("SELECT count(*) FROM journal_entry")
    assert "authenticated and decrypted: every checksum matches (2 files)" in text
    assert "row counts match the manifest" in text
    assert "journal verified: 5 entries in 1 chain(s), ending exactly at the manifest's checkpoint" in text
    assert f"restore OK into {target.describe()}" in text
    assert "encrypted with the field key" in text and "GUICHET_FIELD_KEY_FILE" in text
    assert (media / "receipt.pdf").read_bytes() == b"%PDF receipt"


def test_the_manifest_checkpoint_verifies_the_live_journal(made, tmp_path):
    """The checkpoint printed by a backup is a checkpoint like any other."""
    text = made["create_output"].split("journal checkpoint (keep it apart from the archive):\n")[1]
    checkpoint = cp.parse(text)
    assert checkpoint.chains[3][0] == 5
    with transaction.atomic():
        journal_append(actor=Actor.cli(), operation="test.later", organisation_id=3)
    out = io.StringIO()
    call_command("journal", "verify", "--checkpoint", text, stdout=out)
    assert "consistent with 1 checkpoint(s)" in out.getvalue()
    assert json.dumps  # manifest is JSON inside the archive; read back by verify above


def test_parallel_journal_verification_names_the_same_entry(made):
    """The restore check verifies chains in parallel processes: same verdicts as one process."""
    from guichet.journal.backup import verify_journal

    with empty_target(made["tmp"]) as (target, url):
        restore(made["archive"], made["key"], url, made["tmp"] / "restored-media")
        with target.connect() as conn:
            conn.cursor().execute("UPDATE journal_entry SET details = '{\"i\": 99}' WHERE chain = 3 AND seq = 4")
            conn.commit()
        serial = verify_journal(target, workers=1)
        parallel = verify_journal(target, workers=2)
    assert parallel == serial
    [bad] = [v for v in parallel if not v.ok]
    assert (bad.chain, bad.problem.seq) == (3, 4) and "edited" in bad.problem.reason
