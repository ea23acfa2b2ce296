"""Operating the field key: generate a key file, rotate, re-encrypt, report (``guichet fieldkey``).

Rotation keeps reads working all along: the new key goes first in the key file (it encrypts
every new value at once), the old ones stay below it (they still decrypt), ``reencrypt`` then
rewrites every value and file still under an old key, by batches; when ``status`` shows nothing
left under an old key, that key can be removed from the file (keep a copy offline for the old
backups, which were made under it).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from guichet.common.actor import Actor

from . import crypto


def generate_key_file(path: Path) -> str:
    """Create ``path`` (mode 600) with a new key; never overwrites. Returns the key id."""
    text = crypto.new_key_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(
            "# Guichet field key (docs/security.md, 'Encryption at rest'): first line encrypts, all decrypt\n"
        )
        f.write(text + "\n")
    return crypto.key_id_of(crypto.parse_keys(text, str(path))[0])


def add_key_to_file(path: Path) -> tuple[str, list[str]]:
    """Put a new key first in the key file, keeping the others below it (they still decrypt).
    Written beside and renamed over, mode 600. Returns the new key id and the old ones."""
    old_text = path.read_text(encoding="ascii")
    old = [crypto.key_id_of(k) for k in crypto.parse_keys(old_text, f"field key file '{path}'")]
    text = crypto.new_key_text()
    lines = [line for line in old_text.splitlines() if not line.startswith("#")]
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(
            "# Guichet field key (docs/security.md, 'Encryption at rest'): first line encrypts, all decrypt\n"
        )
        f.write("\n".join([text, *lines]) + "\n")
    os.replace(tmp, path)
    return crypto.key_id_of(crypto.parse_keys(text, str(path))[0]), old


@dataclass
class Report:
    key_ids: list[str]
    columns: dict[str, dict[str, int]] = field(default_factory=dict)  # label -> key id -> values
    files: dict[str, int] = field(default_factory=dict)  # key id ('plain') -> files
    rewritten: int = 0
    unreadable: list[str] = field(default_factory=list)  # files no configured key decrypts

    def old_keys_in_use(self) -> set[str]:
        used = {k for counts in self.columns.values() for k in counts} | set(self.files)
        return used - {self.key_ids[0]}


def _columns():
    for model, f in crypto.encrypted_fields():
        yield model._meta.db_table, f.column, f"{model._meta.label_lower}.{f.name}"


def _media_files(root: Path):
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith((".rewrite", ".new")):
            yield path


def status() -> Report:
    ring = crypto.load_keyring()
    report = Report([k.id for k in ring.keys])
    for table, column, label in _columns():
        report.columns[label] = crypto.column_key_ids(connection, table, column)
    for path in _media_files(Path(settings.MEDIA_ROOT)):
        with path.open("rb") as f:
            kid = crypto.file_key_id(f.read(16)) or "plain"
        report.files[kid] = report.files.get(kid, 0) + 1
    return report


def fieldkey_reencrypt(*, actor: Actor, now: dt.datetime, batch: int = 1000) -> Report:
    """Rewrite every encrypted value and uploaded file that is not under the current key (and
    encrypt the files kept before encryption at rest). Resumable: what is done stays done."""
    from guichet.journal.services import journal_append

    ring = crypto.load_keyring()
    report = Report([k.id for k in ring.keys])
    for table, column, label in _columns():
        with transaction.atomic():
            n = crypto.reencrypt_column(connection, table, column, label, ring=ring, batch=batch)
        report.columns[label] = {ring.current.id: n}
        report.rewritten += n
    files = 0
    for path in _media_files(Path(settings.MEDIA_ROOT)):
        blob = path.read_bytes()
        kid = crypto.file_key_id(blob)
        if kid == ring.current.id:
            continue
        try:
            plain = blob if kid is None else crypto.decrypt_file_bytes(blob, str(path), ring)
        except crypto.FieldKeyError as e:
            report.unreadable.append(str(e))  # left as it is; said at the end
            continue
        tmp = path.with_name(path.name + ".rewrite")
        tmp.write_bytes(crypto.encrypt_file_bytes(plain, ring.current))
        os.replace(tmp, path)
        files += 1
    report.files = {ring.current.id: files}
    report.rewritten += files
    with transaction.atomic(durable=True):
        journal_append(
            actor=actor,
            operation="common.fieldkey.reencrypt",
            now=now,
            details={"key": ring.current.id, "values": report.rewritten - files, "files": files},
        )
    return report
