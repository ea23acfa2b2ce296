"""``guichet journal verify|checkpoint|signing-key``: check the journal, publish its head."""

from __future__ import annotations

import time
from pathlib import Path
from smtplib import SMTPException

from django.core.management.base import BaseCommand, CommandError

from guichet.journal import checkpoint as cp
from guichet.journal.conf import setting
from guichet.journal.publish import JournalBroken, mail_witnesses, take_checkpoint, write_checkpoint
from guichet.journal.selectors import verify_all


class Command(BaseCommand):
    requires_system_checks = []  # must run on a half-configured machine: URLs, templates... are not needed
    help = (
        "The journal. 'verify' checks every chain and names the first bad entry (and, given "
        "checkpoints, that the journal still extends them); 'checkpoint' publishes the head of "
        "every chain (prints it, e-mails it to the witnesses, writes it to a file); 'signing-key' "
        "creates the Ed25519 key that signs checkpoints."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="verify|checkpoint|signing-key")
        verify = sub.add_parser("verify", help="verify every hash chain of the journal")
        verify.add_argument(
            "--checkpoint", action="append", default=[], metavar="FILE_OR_TEXT",
            help="also check the journal against this checkpoint (a file, or its text); repeatable",
        )
        verify.add_argument(
            "--public-key", metavar="FILE",
            help="check the checkpoints' signatures with this Ed25519 public key (PEM)",
        )
        take = sub.add_parser("checkpoint", help="take a checkpoint: print it, e-mail it, write it")
        take.add_argument("--mail", action="store_true", help="e-mail it to GUICHET_JOURNAL_WITNESSES")
        take.add_argument(
            "--output", metavar="FILE_OR_DIR",
            help="write it to a dated file in this directory (created if needed: a name without extension, or "
                 "ending in /), or to this file (e.g. latest.txt)",
        )
        take.add_argument(
            "--no-verify", action="store_true",
            help="read the recorded heads without verifying the journal first (faster; not for witnesses)",
        )
        key = sub.add_parser("signing-key", help="create an Ed25519 key to sign checkpoints")
        key.add_argument("path", metavar="FILE", help="private key file to create (mode 600); FILE.pub gets the public key")

    def handle(self, *args, action, **options):
        if action == "verify":
            return self._verify(options["checkpoint"], options["public_key"])
        if action == "checkpoint":
            return self._checkpoint(options)
        return self._signing_key(Path(options["path"]))

    # --- verify ---------------------------------------------------------------------------

    def _verify(self, checkpoint_args: list[str], public_key_path: str | None):
        checkpoints = []
        for arg in checkpoint_args:
            try:
                checkpoints.append(cp.load(arg))
            except cp.CheckpointError as e:
                raise CommandError(f"--checkpoint: {e}") from None
        self._check_signatures(checkpoints, public_key_path)
        started = time.perf_counter()
        anchors_list = [c.anchors() for c in checkpoints] or [None]
        failed_chains: set[int] = set()
        total = chains = 0
        for index, anchors in enumerate(anchors_list):
            if checkpoints:
                self.stdout.write(f"against {checkpoints[index].label()} ({checkpoints[index].total} entries):")
            verdicts = verify_all(anchors=anchors)
            for v in verdicts:
                if v.ok:
                    self.stdout.write(f"chain {v.chain}: {v.count} entries, OK (head {v.last_hash[:16]}…)")
                else:
                    failed_chains.add(v.chain)
                    self.stdout.write(
                        self.style.ERROR(
                            f"chain {v.chain}: BROKEN at entry #{v.problem.seq}: {v.problem.reason} "
                            f"({v.count} entries verified before it)"
                        )
                    )
            total, chains = sum(v.count for v in verdicts), len(verdicts)
        elapsed = time.perf_counter() - started
        if failed_chains:
            self.stderr.write(self.style.ERROR(f"journal verification FAILED on {len(failed_chains)} chain(s)"))
            raise SystemExit(1)
        against = f", consistent with {len(checkpoints)} checkpoint(s)" if checkpoints else ""
        rate = f" in {elapsed:.1f} s" if elapsed >= 0.1 else ""
        self.stdout.write(self.style.SUCCESS(f"journal OK: {total} entries in {chains} chain(s){against}{rate}"))

    def _check_signatures(self, checkpoints, public_key_path):
        key_path = public_key_path or setting("GUICHET_JOURNAL_SIGNING_KEY_FILE")
        signed = [c for c in checkpoints if c.signature]
        if not signed:
            if public_key_path and checkpoints:
                raise CommandError("--public-key given but the checkpoint is not signed")
            return
        if not key_path:
            self.stdout.write(self.style.WARNING("checkpoint signature not checked: give --public-key FILE"))
            return
        try:
            key = cp.load_public_key(key_path)
            for c in signed:
                c.check_signature(key)
        except cp.CheckpointError as e:
            raise CommandError(f"--checkpoint: {e}") from None
        self.stdout.write(f"checkpoint signature(s) valid ({len(signed)})")

    # --- checkpoint -----------------------------------------------------------------------

    def _checkpoint(self, options):
        try:
            checkpoint = take_checkpoint(verify=not options["no_verify"])
        except JournalBroken as e:
            raise CommandError(str(e)) from None
        except cp.CheckpointError as e:
            raise CommandError(f"GUICHET_JOURNAL_SIGNING_KEY_FILE: {e}") from None
        self.stdout.write(checkpoint.text(), ending="")
        if options["output"]:
            try:
                path = write_checkpoint(checkpoint, options["output"])
            except OSError as e:
                raise CommandError(f"--output: cannot write {options['output']}: {e.strerror}") from None
            self.stderr.write(f"written to {path}")
        if options["mail"]:
            try:
                sent = mail_witnesses(checkpoint)
            except (SMTPException, OSError) as e:
                raise CommandError(f"the checkpoint could not be e-mailed: {e}") from None
            if not sent:
                raise CommandError("--mail: no witness configured (set GUICHET_JOURNAL_WITNESSES)")
            self.stderr.write(f"e-mailed to {len(sent)} witness(es)")

    def _signing_key(self, path: Path):
        try:
            cp.write_signing_key(path)
        except cp.CheckpointError as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"private key written to {path} (mode 600): set GUICHET_JOURNAL_SIGNING_KEY_FILE={path}")
        self.stdout.write(f"public key written to {path}.pub: give it to the witnesses")
