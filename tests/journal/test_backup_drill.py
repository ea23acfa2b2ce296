"""The restore drill, on the database the suite runs on (SQLite, then PostgreSQL in CI).

Populate (the demo towns plus bookings and an uploaded file), back up, destroy, restore onto an
empty database, verify the journal, and compare every table's row count and content checksum
and every file: identical.
"""

import datetime as dt
import hashlib
import io
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from guichet.bookings.models import Booking, Child, Session, Unit
from guichet.bookings.services import BookingError, booking_create_by_agent
from guichet.common.actor import Actor
from guichet.journal.backup import Database, row_counts, verify_journal

from .backup_helpers import empty_target

pytestmark = pytest.mark.django_db(transaction=True)


def populate() -> int:
    call_command("demo", stdout=io.StringIO())
    now = timezone.now()
    made = 0
    for child in Child.objects.select_related("household").order_by("pk"):
        sessions = Session.objects.filter(organisation_id=child.organisation_id, closed=False).order_by("date", "pk")[:6]
        for session in sessions:
            unit = Unit.objects.filter(activity_id=session.activity_id).order_by("pk").first()
            try:
                booking_create_by_agent(household=child.household, child=child, session=session, unit=unit,
                                        actor=Actor.cli(), now=now, reason="restore drill")
                made += 1
            except BookingError:
                continue
    return made


def table_digests(db: Database) -> dict[str, str]:
    """Each table's rows, in a fixed order, hashed: equal digests mean equal content."""
    digests = {}
    with db.connect() as conn:
        cursor = conn.cursor()
        for table in row_counts(cursor, db.engine):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from the catalogue)
            rows = sorted(repr(r) for r in cursor.fetchall())
            digests[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        if db.engine == "postgresql":
            conn.rollback()
    return digests


def test_restore_drill(tmp_path, settings):
    media = tmp_path / "media"
    (media / "justifications" / "2026").mkdir(parents=True)
    certificate = media / "justifications" / "2026" / "certificat-medical.pdf"
    certificate.write_bytes(b"%PDF-1.4 " + uuid.uuid4().bytes * 1000)
    settings.MEDIA_ROOT = media
    assert populate() >= 10
    assert Booking.objects.count() >= 10
    key = tmp_path / "backup.key"
    call_command("backup", "keygen", str(key), stdout=io.StringIO())

    # Back up.
    archive = tmp_path / "drill.gbak"
    out = io.StringIO()
    call_command("backup", "create", str(archive), "--key-file", str(key), stdout=out)
    assert "backup written" in out.getvalue()
    source = Database.from_django()
    before_counts = row_counts(connection.cursor(), source.engine)
    before_digests = table_digests(source)
    before_journal = [(v.chain, v.count, v.last_hash) for v in verify_journal(source)]
    assert sum(n for _c, n, _h in before_journal) >= 10

    # Verify the archive on its own.
    out = io.StringIO()
    call_command("backup", "verify", str(archive), "--key-file", str(key), stdout=out)
    assert f"archive OK: {archive}" in out.getvalue()

    # Destroy: the original files are gone (the database is left to the test framework), then
    # restore onto an empty database and an empty directory, with only the archive and the key.
    certificate.unlink()
    restored_media = tmp_path / "restored-media"
    with empty_target(tmp_path) as (target, url):
        out = io.StringIO()
        with override_settings(MEDIA_ROOT=tmp_path / "unused"):
            call_command("backup", "restore", str(archive), "--key-file", str(key), "--database-url", url,
                         "--media-root", str(restored_media), stdout=out)
        text = out.getvalue()
        assert "restore OK into" in text
        assert "journal verified" in text and "ending exactly at the manifest's checkpoint" in text

        # Identical: row counts, table contents, journal, files.
        with target.connect() as conn:
            after_counts = row_counts(conn.cursor(), target.engine)
        assert after_counts == before_counts
        assert table_digests(target) == before_digests
        assert [(v.chain, v.count, v.last_hash) for v in verify_journal(target)] == before_journal
        restored = restored_media / "justifications" / "2026" / "certificat-medical.pdf"
        assert restored.read_bytes()[:9] == b"%PDF-1.4 " and len(restored.read_bytes()) == 9 + 16000


def test_backup_in_the_middle_of_writes_describes_its_own_snapshot(tmp_path, settings):
    """The manifest's counts and checkpoint come from the same snapshot as the dump, so the
    restore check passes even though the journal moved on right after the backup."""
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("demo", stdout=io.StringIO())
    key = tmp_path / "k"
    call_command("backup", "keygen", str(key), stdout=io.StringIO())
    archive = tmp_path / "a.gbak"
    call_command("backup", "create", str(archive), "--key-file", str(key), stdout=io.StringIO())
    populate()  # more writes after the backup
    with empty_target(tmp_path) as (_target, url):
        out = io.StringIO()
        call_command("backup", "restore", str(archive), "--key-file", str(key), "--database-url", url,
                     "--media-root", str(tmp_path / "m2"), stdout=out)
        assert "restore OK" in out.getvalue()
    assert dt.datetime.now(dt.UTC)  # the drill above ran with no frozen clock
