"""``guichet backup create|verify|restore|keygen``: encrypted archives and their restore."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from guichet.journal import backup as bk
from guichet.journal.checkpoint import CheckpointError, write_secret
from guichet.journal.crypto import key_id, new_key_text, parse_key


class Command(BaseCommand):
    requires_system_checks = []  # must run on a half-configured machine: URLs, templates... are not needed
    help = (
        "Backups. 'create' writes one encrypted archive (database, uploaded files, manifest); "
        "'verify ARCHIVE' authenticates and checks it; 'restore ARCHIVE' restores it onto an empty "
        "database; 'keygen FILE' creates the key. See docs/guide-backups.md."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="create|verify|restore|keygen")
        create = sub.add_parser("create", help="write an encrypted archive of the database and uploaded files")
        create.add_argument(
            "archive", nargs="?", metavar="ARCHIVE",
            help="file to write (default: guichet-YYYYmmddTHHMMSSZ.gbak in the current directory, "
                 "or in --directory); never overwritten",
        )
        create.add_argument("--directory", metavar="DIR", help="write a dated archive in DIR")
        verify = sub.add_parser("verify", help="authenticate an archive and check its content")
        verify.add_argument("archive", metavar="ARCHIVE")
        restore = sub.add_parser("restore", help="restore an archive onto an EMPTY database")
        restore.add_argument("archive", metavar="ARCHIVE")
        for p in (create, restore):
            p.add_argument("--database-url", metavar="URL",
                           help="the database (default: the configured one, DATABASE_URL)")
            p.add_argument("--media-root", metavar="DIR", help="the uploaded files (default: MEDIA_ROOT)")
        for p in (create, verify, restore):
            p.add_argument("--key-file", metavar="FILE",
                           help="the backup key (default: GUICHET_BACKUP_KEY_FILE, else GUICHET_BACKUP_KEY)")
        keygen = sub.add_parser("keygen", help="create a backup key file (mode 600)")
        keygen.add_argument("path", metavar="FILE")

    def handle(self, *args, action, **options):
        try:
            if action == "keygen":
                return self._keygen(Path(options["path"]))
            key = bk.load_key(options["key_file"])
            if action == "create":
                return self._create(key, options)
            if action == "verify":
                return self._verify(key, Path(options["archive"]))
            return self._restore(key, options)
        except bk.BackupError as e:
            raise CommandError(f"{action} FAILED: {e}") from None

    def _say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def _database(self, options) -> bk.Database:
        if options.get("database_url"):
            return bk.Database.from_url(options["database_url"])
        return bk.Database.from_django()

    def _media_root(self, options) -> Path:
        return Path(options.get("media_root") or settings.MEDIA_ROOT)

    def _keygen(self, path: Path):
        text = new_key_text()
        try:
            write_secret(path, text.encode("ascii"))
        except CheckpointError as e:
            raise CommandError(str(e)) from None
        self._say(f"backup key {key_id(parse_key(text, 'new key'))} written to {path} (mode 600)")
        self._say("Keep a copy OFF this machine (see docs/guide-backups.md): without it no archive can be read.")

    def _create(self, key: bytes, options):
        now = dt.datetime.now(dt.UTC)
        if options["archive"]:
            archive = Path(options["archive"])
        else:
            directory = Path(options["directory"] or ".")
            archive = directory / f"guichet-{now:%Y%m%dT%H%M%SZ}.gbak"
        summary = bk.create_backup(archive=archive, key=key, db=self._database(options),
                                   media_root=self._media_root(options), progress=self._say, now=now)
        m = summary.manifest
        cp = summary.checkpoint
        self._say(self.style.SUCCESS(f"backup written: {summary.archive}"))
        self._say(f"  archive      {bk._human(summary.archive_bytes)}, encrypted with key {key_id(key)}")
        self._say(f"  database     {m['database']['engine']}, {summary.total_rows} rows in {len(m['rows'])} tables, "
                  f"{len(m['schema']['migrations'])} migrations")
        self._say(f"  files        {len(m['media'])}")
        self._say(f"  journal      {cp.total} entries in {len(cp.chains)} chain(s)")
        self._say(f"  time         {sum(summary.seconds.values()):.1f} s")
        self._say(f"  field key    {_field_keys()}: NOT in the archive (IBANs, incomes and files are "
                  "encrypted with it); keep its copy with the backup key's")
        self._say("journal checkpoint (keep it apart from the archive):")
        self._say(cp.text().rstrip("\n"))

    def _verify(self, key: bytes, archive: Path):
        summary = bk.verify_backup(archive=archive, key=key, progress=self._say)
        m = summary.manifest
        self._say(self.style.SUCCESS(f"archive OK: {archive}"))
        self._say(f"  created      {m['created_at']} on {m['host']} (Guichet {m['guichet_version']})")
        self._say(f"  database     {m['database']['engine']}, {summary.total_rows} rows in {len(m['rows'])} tables")
        self._say(f"  files        {len(m['media'])}")
        self._say(f"  journal      {summary.checkpoint.total} entries in {len(summary.checkpoint.chains)} chain(s)")
        for note in summary.notes:
            self._say(f"  note: {note}")

    def _restore(self, key: bytes, options):
        db = self._database(options)
        summary = bk.restore_backup(archive=Path(options["archive"]), key=key, db=db,
                                    media_root=self._media_root(options), progress=self._say)
        m = summary.manifest
        self._say(self.style.SUCCESS(f"restore OK into {db.describe()}"))
        self._say(f"  from         {summary.archive}, created {m['created_at']} on {m['host']}")
        self._say(f"  database     {summary.total_rows} rows in {len(m['rows'])} tables, as the manifest says")
        self._say(f"  files        {len(m['media'])}")
        self._say(f"  journal      {sum(v.count for v in summary.verdicts)} entries verified, ending at the "
                  f"manifest's checkpoint")
        t = summary.seconds
        self._say(f"  time         {t['total']:.1f} s (decrypt and check {t['decrypt']:.1f} s, database "
                  f"{t['database']:.1f} s, row counts and journal {t['check']:.1f} s)")
        self._say(f"  field key    the IBANs, incomes and uploaded files are encrypted with the field key the "
                  f"backed-up service had: start Guichet with that key file (GUICHET_FIELD_KEY_FILE; "
                  f"configured here: {_field_keys()}); 'guichet check' says so if it is not the right one")
        for note in summary.notes:
            self._say(f"  note: {note}")


def _field_keys() -> str:
    """The configured field key ids, for the summaries (a restore needs the field key too)."""
    from guichet.common.crypto import FieldKeyError, load_keyring

    try:
        return "key " + ", ".join(k.id for k in load_keyring().keys)
    except FieldKeyError as e:
        return f"none ({e})"
