"""Taking a checkpoint of the journal and sending it where an attacker does not reach."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from django.core.mail import send_mail
from django.db import connection
from django.utils import timezone

from . import checkpoint as cp
from .conf import setting, witnesses
from .selectors import heads, verify_all


class JournalBroken(RuntimeError):
    """The journal failed verification: no checkpoint is published for a broken journal."""

    def __init__(self, verdicts):
        self.verdicts = verdicts
        bad = ", ".join(f"chain {v.chain} at entry #{v.problem.seq} ({v.problem.reason})" for v in verdicts)
        super().__init__(f"the journal is broken, no checkpoint taken: {bad}")


def take_checkpoint(*, now: dt.datetime | None = None, verify: bool = True, progress=None) -> cp.Checkpoint:
    """The current head of every chain, signed when a signing key is configured.

    With ``verify`` (the default) the whole journal is verified first and the checkpoint is
    built from what verification walked, so it never vouches for a broken journal. Without it,
    the recorded heads are read (instant; used for the status export).
    """
    now = now or timezone.now()
    if verify:
        verdicts = verify_all(progress=progress)
        bad = [v for v in verdicts if not v.ok]
        if bad:
            raise JournalBroken(bad)
        checkpoint = cp.Checkpoint(time=now, chains={v.chain: (v.count, v.last_hash) for v in verdicts})
    else:
        with connection.cursor() as cursor:
            checkpoint = cp.from_heads(heads(cursor), now=now)
    key_file = setting("GUICHET_JOURNAL_SIGNING_KEY_FILE")
    if key_file:
        checkpoint = checkpoint.signed(cp.load_private_key(key_file))
    return checkpoint


def mail_witnesses(checkpoint: cp.Checkpoint, *, recipients: list[str] | None = None) -> list[str]:
    """E-mail the checkpoint to the witnesses; returns who it was sent to (nobody if none set)."""
    recipients = recipients if recipients is not None else witnesses()
    if not recipients:
        return []
    host = socket.gethostname()
    subject = f"[Guichet] journal checkpoint {checkpoint.time.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({host})"
    body = (
        "This is the daily checkpoint of the Guichet journal: the number of entries and the last\n"
        "hash of each chain. Keep this message. If the town's systems are ever compromised, it\n"
        "proves what the journal held at this time: an operator checks the journal against it with\n\n"
        "    guichet journal verify --checkpoint FILE\n\n"
        "(save the lines between the markers to FILE). Nobody needs to reply.\n\n"
        "----- BEGIN CHECKPOINT -----\n"
        f"{checkpoint.text()}"
        "----- END CHECKPOINT -----\n"
        f"Total: {checkpoint.total} entries in {len(checkpoint.chains)} chain(s). Sent by {host}.\n"
    )
    send_mail(subject, body, None, recipients, fail_silently=False)
    return recipients


def write_checkpoint(checkpoint: cp.Checkpoint, path: Path | str) -> Path:
    """Write to ``path``. A directory gets a dated file name (one file per checkpoint, kept):
    an existing directory, a path ending in ``/``, or a path without a file extension that does
    not exist yet (created: ``--output /var/backups/guichet/checkpoints`` on the first night must
    not become a single file overwritten every night). Anything else is the file to write."""
    as_given = str(path)
    path = Path(path)
    if path.is_dir() or as_given.endswith("/") or (not path.exists() and not path.suffix):
        path.mkdir(parents=True, exist_ok=True)
        path = path / f"journal-checkpoint-{checkpoint.time.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(checkpoint.text(), encoding="utf-8")
    return path


def checkpoint_for_export(*, now: dt.datetime) -> cp.Checkpoint | None:
    """The checkpoint printed on the static status export: the recorded heads (instant), signed
    when a key is set. Never stops the export: on any problem it logs and returns None."""
    import logging

    from django.db import DatabaseError

    try:
        return take_checkpoint(now=now, verify=False)
    except (cp.CheckpointError, DatabaseError) as e:
        logging.getLogger(__name__).warning("no journal checkpoint on the static export: %s", e)
        return None
