"""``guichet fieldkey generate|rotate|reencrypt|status``: the key of the fields encrypted at rest."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guichet.common import crypto, fieldkeys
from guichet.common.actor import Actor


class Command(BaseCommand):
    requires_system_checks = []  # must run before a key is configured (the checks would refuse)
    help = (
        "The field key (IBANs, incomes, justification files encrypted at rest). 'generate FILE' creates "
        "a key file; 'rotate --key-file FILE' puts a new key first in it and re-encrypts everything; "
        "'reencrypt' rewrites what is not under the current key; 'status' counts values per key. "
        "See docs/security.md, 'Encryption at rest'."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="generate|rotate|reencrypt|status"
        )
        gen = sub.add_parser(
            "generate", help="create a field key file (mode 600, never overwritten)"
        )
        gen.add_argument("path", metavar="FILE")
        rot = sub.add_parser(
            "rotate", help="add a new current key to the key file, then re-encrypt"
        )
        rot.add_argument(
            "--key-file",
            metavar="FILE",
            required=True,
            help="the key file the service uses (GUICHET_FIELD_KEY_FILE)",
        )
        sub.add_parser("reencrypt", help="re-encrypt values and files under an old key (resumable)")
        sub.add_parser("status", help="how many values and files each key encrypts")

    def handle(self, *args, action, **options):
        try:
            if action == "generate":
                path = Path(options["path"])
                try:
                    kid = fieldkeys.generate_key_file(path)
                except FileExistsError:
                    raise CommandError(
                        f"generate FAILED: '{path}' exists; a key file is never overwritten"
                    ) from None
                except OSError as e:
                    raise CommandError(
                        f"generate FAILED: cannot create '{path}': {e.strerror}"
                    ) from None
                self.stdout.write(
                    f"field key {kid} written to {path} (mode 600). Set GUICHET_FIELD_KEY_FILE={path} "
                    "and keep a copy offline, apart from the backups: without it, no restore can "
                    "read the IBANs, incomes and justification files."
                )
                return
            if action == "rotate":
                return self._rotate(Path(options["key_file"]))
            if action == "reencrypt":
                return self._reencrypt()
            return self._status()
        except crypto.FieldKeyError as e:
            raise CommandError(f"{action} FAILED: {e}") from None

    def _rotate(self, path: Path) -> None:
        configured = crypto._setting("GUICHET_FIELD_KEY_FILE")
        if not configured or Path(configured).resolve() != path.resolve():
            raise CommandError(
                f"rotate FAILED: '{path}' is not the configured key file (GUICHET_FIELD_KEY_FILE="
                f"'{configured}'): the new key must be the one the service reads"
            )
        try:
            new, old = fieldkeys.add_key_to_file(path)
        except FileNotFoundError:
            raise CommandError(f"rotate FAILED: '{path}' not found") from None
        crypto.keyring.cache_clear()
        self.stdout.write(f"new current key {new}; old keys kept for decryption: {', '.join(old)}")
        self._reencrypt()

    def _reencrypt(self) -> None:
        report = fieldkeys.fieldkey_reencrypt(actor=Actor.cli(), now=timezone.now())
        values = sum(n for counts in report.columns.values() for n in counts.values())
        self.stdout.write(
            f"re-encrypted under key {report.key_ids[0]}: {values} values, "
            f"{sum(report.files.values())} files"
        )
        self._status()
        if report.unreadable:
            raise CommandError(
                f"reencrypt: {len(report.unreadable)} file(s) left as they were, no configured key reads them: "
                + "; ".join(report.unreadable[:5])
            )

    def _status(self) -> None:
        report = fieldkeys.status()
        self.stdout.write(f"keys: {', '.join(report.key_ids)} (the first encrypts)")
        for label, counts in report.columns.items():
            shown = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())) or "empty"
            self.stdout.write(f"  {label}: {shown}")
        shown = ", ".join(f"{k}: {n}" for k, n in sorted(report.files.items())) or "none"
        self.stdout.write(f"  uploaded files: {shown}")
        old = report.old_keys_in_use()
        if old:
            self.stdout.write(
                f"still under other keys or not encrypted: {', '.join(sorted(old))}: "
                "run 'guichet fieldkey reencrypt'"
            )
        else:
            self.stdout.write(
                "everything is under the current key: older keys can be removed from the key "
                "file (keep them offline for older backups)"
            )
