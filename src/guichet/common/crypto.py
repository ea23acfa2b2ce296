"""Sensitive fields and files encrypted at rest (ADR 0011).

A database dump or a copy of the uploaded files alone reveals no IBAN, no income, no family
quotient and no medical certificate: those values are encrypted with AES-256-GCM under a *field
key* that lives in a file or in the environment, never in the database nor in git.

- **Keys.** ``GUICHET_FIELD_KEY_FILE`` names a file made by ``guichet fieldkey generate``: one key
  per line, the first encrypts, every line decrypts (rotation: ``guichet fieldkey rotate``).
  ``GUICHET_FIELD_KEY`` holds the same lines, comma-separated, when a file is not practical.
  Development, demo-less runs and the tests fall back to a fixed *insecure* key (like
  ``SECRET_KEY``); ``guichet check --deploy`` refuses it.
- **Values.** A text value is stored as ``gfe1:<key id>:<base64(nonce | ciphertext+tag)>``;
  a binary value as ``GFE1 | key id (4) | nonce (12) | ciphertext+tag``. The key id (4 bytes of an
  HMAC of a constant under the master key) says which key decrypts, so old keys keep working
  after a rotation and "wrong key" is told apart from "altered value". The associated data is the
  column's name (``water.mandate.iban``): a ciphertext copied into another column does not
  decrypt. Each master key is split with HKDF into an encryption key and a blind-index key.
- **Blind index.** ``blind_index(purpose, value)``: an HMAC-SHA256 under the current key, for the
  rare lookup or digest of a plain value (the journal payload of a quotient, for instance): equal
  values give equal indexes, a dump cannot be reversed without the key.
- **Files.** ``EncryptedFileSystemStorage`` encrypts each file as one AES-GCM message
  (justifications are at most 5 MB); its files have no public URL.

Only ``cryptography``'s AESGCM, HKDF and HMAC are used: no home-made primitive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import FieldError
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.signals import setting_changed
from django.db import models
from django.db.models.lookups import Exact
from django.dispatch import receiver
from django.utils.deconstruct import deconstructible

KEY_PREFIX = "guichet-field-key-1:"
TEXT_PREFIX = "gfe1:"
BINARY_MAGIC = b"GFE1"
FILE_MAGIC = b"GFEF1\n"
NONCE = 12
# Tests and development only (DEBUG, pytest, GUICHET_INSECURE_DEV_KEY): public, so never for real data.
INSECURE_DEV_KEY = hashlib.sha256(
    b"guichet insecure development field key - never in production"
).digest()


class FieldKeyError(Exception):
    """The field key is missing, malformed, or not the one the data was encrypted with."""


class NotEncryptedError(FieldKeyError):
    """A stored value or file is still in clear: kept before encryption at rest, its migration
    (values) or ``guichet fieldkey reencrypt`` (files) has not run yet."""


# --- keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    id: str  # 8 hex digits
    aead: AESGCM
    index_key: bytes


@dataclass(frozen=True, slots=True)
class Keyring:
    keys: tuple[Key, ...]  # the first encrypts
    source: str  # where the keys came from, for messages
    insecure: bool = False

    @property
    def current(self) -> Key:
        return self.keys[0]

    def get(self, key_id: str, column: str) -> Key:
        for key in self.keys:
            if key.id == key_id:
                return key
        dev = key_id == key_id_of(INSECURE_DEV_KEY)
        raise FieldKeyError(
            f"{column}: encrypted with field key {key_id}"
            + (" (the public development key)" if dev else "")
            + f", which is not among the keys of {self.source} ({', '.join(k.id for k in self.keys)}): "
            + (
                "add the line 'guichet-field-key-1:"
                + base64.b64encode(INSECURE_DEV_KEY).decode()
                + "' below "
                "the current key in the key file, then run 'guichet fieldkey reencrypt'"
                if dev
                else "configure the key the data was encrypted with (see 'guichet fieldkey status')"
            )
        )


def key_id_of(master: bytes) -> str:
    return hmac.new(master, b"guichet field key id", hashlib.sha256).hexdigest()[:8]


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def make_key(master: bytes) -> Key:
    return Key(
        key_id_of(master),
        AESGCM(_derive(master, b"guichet field encryption v1")),
        _derive(master, b"guichet field blind index v1"),
    )


def new_key_text() -> str:
    return KEY_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


# What to do when no usable field key is configured (start-up check and the WSGI server).
MISSING_KEY_HINT = (
    "Create a key with 'guichet fieldkey generate FILE' (mode 600, kept offline too) and set "
    "GUICHET_FIELD_KEY_FILE to it (docs/security.md, 'Encryption at rest')."
)


def decode_key(value: str, prefix: str) -> bytes | None:
    """A 256-bit key written as ``prefix`` (optional) + base64, or None when it is not one.
    Shared by the field keys and the backup keys (guichet.journal.crypto)."""
    value = value.strip()
    if value.startswith(prefix):
        value = value[len(prefix) :]
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None


def parse_keys(text: str, where: str) -> list[bytes]:
    """The keys in ``text``: one per line or comma-separated, ``#`` comments allowed."""
    out = []
    values = [v.strip() for line in text.splitlines() for v in line.split("#", 1)[0].split(",")]
    for n, value in enumerate((v for v in values if v), 1):
        key = decode_key(value, KEY_PREFIX)
        if key is None:
            raise FieldKeyError(
                f"{where}, key {n}: not a field key (expected '{KEY_PREFIX}' and 32 bytes in base64)"
            )
        out.append(key)
    if not out:
        raise FieldKeyError(
            f"{where} holds no field key ('guichet fieldkey generate FILE' creates one)"
        )
    return out


def _setting(name: str) -> str:
    from django.conf import settings

    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    return str(value or "").strip()


def load_keyring() -> Keyring:
    """The configured keys: GUICHET_FIELD_KEY_FILE, else GUICHET_FIELD_KEY, else (development and
    tests only, ``GUICHET_FIELD_KEY_INSECURE_DEV``) the insecure development key."""
    from django.conf import settings

    path = _setting("GUICHET_FIELD_KEY_FILE")
    if path:
        try:
            text = Path(path).read_text(encoding="ascii")
        except FileNotFoundError:
            raise FieldKeyError(
                f"field key file '{path}' (GUICHET_FIELD_KEY_FILE) not found"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise FieldKeyError(
                f"cannot read field key file '{path}' (GUICHET_FIELD_KEY_FILE): {e}"
            ) from None
        masters, source = parse_keys(text, f"field key file '{path}'"), f"field key file '{path}'"
    elif _setting("GUICHET_FIELD_KEY"):
        masters, source = (
            parse_keys(_setting("GUICHET_FIELD_KEY"), "GUICHET_FIELD_KEY"),
            "GUICHET_FIELD_KEY",
        )
    elif getattr(settings, "GUICHET_FIELD_KEY_INSECURE_DEV", False):
        return Keyring((make_key(INSECURE_DEV_KEY),), "the insecure development key", insecure=True)
    else:
        raise FieldKeyError(
            "no field key: set GUICHET_FIELD_KEY_FILE (or GUICHET_FIELD_KEY); "
            "'guichet fieldkey generate FILE' creates one (docs/security.md, 'Encryption at rest')"
        )
    keys = tuple(make_key(m) for m in masters)
    return Keyring(keys, source, insecure=any(k.id == key_id_of(INSECURE_DEV_KEY) for k in keys))


@cache
def keyring() -> Keyring:
    return load_keyring()


def _key_for(key_id: str, column: str, ring: Keyring | None) -> Key:
    if ring is not None:
        return ring.get(key_id, column)
    try:
        return keyring().get(key_id, column)
    except FieldKeyError:
        # A key unknown to this process: the key file may have gained it since it was read
        # (``guichet fieldkey rotate`` run while the service runs). Read it again, once.
        keyring.cache_clear()
        return keyring().get(key_id, column)


@receiver(setting_changed)
def _forget_keys(*, setting, **kwargs):
    if setting.startswith("GUICHET_FIELD_KEY"):
        keyring.cache_clear()


# --- values ---------------------------------------------------------------------------------------


def encrypt_bytes(plain: bytes, column: str, key: Key | None = None) -> bytes:
    key = key or keyring().current
    nonce = os.urandom(NONCE)
    return (
        BINARY_MAGIC
        + bytes.fromhex(key.id)
        + nonce
        + key.aead.encrypt(nonce, plain, column.encode())
    )


def binary_key_id(blob: bytes) -> str | None:
    return blob[4:8].hex() if blob[:4] == BINARY_MAGIC and len(blob) >= 8 + NONCE + 16 else None


def decrypt_bytes(blob: bytes, column: str, ring: Keyring | None = None) -> bytes:
    blob = bytes(blob)
    key_id = binary_key_id(blob)
    if key_id is None:
        raise NotEncryptedError(
            f"{column}: the stored value is not an encrypted value (not yet migrated?)"
        )
    key = _key_for(key_id, column, ring)
    try:
        return key.aead.decrypt(blob[8 : 8 + NONCE], blob[8 + NONCE :], column.encode())
    except InvalidTag:
        raise FieldKeyError(
            f"{column}: an encrypted value was altered (key {key_id} does not authenticate it)"
        ) from None


def encrypt_text(plain: str, column: str, key: Key | None = None) -> str:
    key = key or keyring().current
    nonce = os.urandom(NONCE)
    sealed = key.aead.encrypt(nonce, plain.encode("utf-8"), column.encode())
    return f"{TEXT_PREFIX}{key.id}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def text_key_id(stored: str) -> str | None:
    if (
        stored.startswith(TEXT_PREFIX)
        and stored[len(TEXT_PREFIX) + 8 : len(TEXT_PREFIX) + 9] == ":"
    ):
        return stored[len(TEXT_PREFIX) : len(TEXT_PREFIX) + 8]
    return None


def decrypt_text(stored: str, column: str, ring: Keyring | None = None) -> str:
    key_id = text_key_id(stored) if isinstance(stored, str) else None
    if key_id is None:
        raise NotEncryptedError(
            f"{column}: the stored value is not an encrypted value (not yet migrated?)"
        )
    key = _key_for(key_id, column, ring)
    try:
        blob = base64.b64decode(stored[len(TEXT_PREFIX) + 9 :], validate=True)
        return key.aead.decrypt(blob[:NONCE], blob[NONCE:], column.encode()).decode("utf-8")
    except (InvalidTag, binascii.Error, ValueError):
        raise FieldKeyError(
            f"{column}: an encrypted value was altered (key {key_id} does not authenticate it)"
        ) from None


def blind_index(purpose: str, value: str) -> str:
    """A keyed digest of ``value`` (HMAC-SHA256 under the current key's index key): for lookups and
    journal payloads of sensitive values. Changes with the key (rotation)."""
    key = keyring().current
    return (
        key.id
        + ":"
        + hmac.new(key.index_key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()
    )


# --- model fields ---------------------------------------------------------------------------------


class _Encrypted:
    """Encrypt on save, decrypt on load. Only ``isnull`` lookups work: the database never sees the
    plain value, so it cannot compare, order or index it."""

    def column_label(self) -> str:
        return f"{self.model._meta.label_lower}.{self.name}"

    def get_lookup(self, lookup_name):
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None

    def get_transform(self, name):
        return None


Encrypted = _Encrypted  # public name: ``isinstance(field, crypto.Encrypted)``


class _EmptyOnlyExact(Exact):
    """``field=""``: the one comparison an encrypted text allows (the empty string is stored empty)."""

    def get_prep_lookup(self):
        if self.rhs != "":
            raise FieldError(
                f"'{self.lhs.target.name}' is encrypted at rest: it can be compared with '' only"
            )
        return super().get_prep_lookup()


class EncryptedTextField(_Encrypted, models.TextField):
    """A string stored encrypted (``max_length`` is checked on the plain value by forms and
    ``full_clean``, not by the database). The empty string is stored empty, so ``field=""``
    (and its ``exclude``) works; no other comparison does."""

    def get_lookup(self, lookup_name):
        return _EmptyOnlyExact if lookup_name == "exact" else super().get_lookup(lookup_name)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt_text(value, self.column_label())

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(value, self.column_label())


class EncryptedIntegerField(_Encrypted, models.TextField):
    """An integer stored encrypted (as text in the database)."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return int(decrypt_text(value, self.column_label()))

    def to_python(self, value):
        if value is None or isinstance(value, int):
            return value
        return models.IntegerField().to_python(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        value = self.to_python(value)
        return encrypt_text(str(int(value)), self.column_label())

    def formfield(self, **kwargs):
        from django import forms

        return models.Field.formfield(self, **{"form_class": forms.IntegerField, **kwargs})


class EncryptedBinaryField(_Encrypted, models.BinaryField):
    """Bytes stored encrypted (a generated SEPA file, for instance). Empty stays empty."""

    def from_db_value(self, value, expression, connection):
        if value is None or len(value) == 0:
            return value
        return decrypt_bytes(value, self.column_label())

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is not None and len(value) > 0:
            value = encrypt_bytes(bytes(value), self.column_label())
        return super().get_db_prep_value(value, connection, prepared)


def encrypted_fields() -> list[tuple[type[models.Model], models.Field]]:
    """Every encrypted field of the installed models, in a stable order."""
    from django.apps import apps

    out = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, _Encrypted):
                out.append((model, field))
    return sorted(out, key=lambda mf: (mf[0]._meta.label_lower, mf[1].name))


def encrypted_file_fields() -> list[tuple[type[models.Model], models.FileField]]:
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.FileField)
        and isinstance(field.storage, EncryptedFileSystemStorage)
    ]


# --- files ----------------------------------------------------------------------------------------

FILE_AAD = b"guichet encrypted file v1"


def encrypt_file_bytes(plain: bytes, key: Key | None = None) -> bytes:
    key = key or keyring().current
    nonce = os.urandom(NONCE)
    return FILE_MAGIC + bytes.fromhex(key.id) + nonce + key.aead.encrypt(nonce, plain, FILE_AAD)


def file_key_id(head: bytes) -> str | None:
    n = len(FILE_MAGIC)
    return head[n : n + 4].hex() if head[:n] == FILE_MAGIC and len(head) >= n + 4 else None


def decrypt_file_bytes(blob: bytes, name: str, ring: Keyring | None = None) -> bytes:
    key_id = file_key_id(blob)
    if key_id is None:
        raise NotEncryptedError(
            f"file '{name}' is not encrypted (kept before encryption at rest: run 'guichet fieldkey reencrypt')"
        )
    key = _key_for(key_id, f"file '{name}'", ring)
    start = len(FILE_MAGIC) + 4
    try:
        return key.aead.decrypt(blob[start : start + NONCE], blob[start + NONCE :], FILE_AAD)
    except InvalidTag:
        raise FieldKeyError(
            f"file '{name}' was altered (key {key_id} does not authenticate it)"
        ) from None


@deconstructible(path="guichet.common.crypto.EncryptedFileSystemStorage")
class EncryptedFileSystemStorage(FileSystemStorage):
    """Files encrypted in MEDIA_ROOT, one AES-256-GCM message each. They have no URL: they are
    served only by views that check who asks (``open()`` returns the plain content)."""

    def _save(self, name, content):
        content.seek(0)
        sealed = encrypt_file_bytes(content.read())
        return super()._save(name, ContentFile(sealed))

    def _open(self, name, mode="rb"):
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("encrypted files are written through save() only")
        with super()._open(name, "rb") as handle:
            blob = handle.read()
        plain = ContentFile(decrypt_file_bytes(blob, name), name=name)
        return plain

    def size(self, name):
        return len(self._open(name).read())

    def url(self, name):
        """No public URL: MEDIA_URL is not served (a file goes out only through a view that checks
        who asks). Empty rather than an error, so that the read-only administration still shows
        the file's name."""
        return ""


# --- migrations and rotation: raw columns -----------------------------------------------------


def stored_key_id(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return text_key_id(value) if value else None
    blob = bytes(value)
    return binary_key_id(blob) if blob else None


def reseal(value, column: str, ring: Keyring, *, plain_ok: bool):
    """The stored ``value`` re-encrypted under ``ring``'s current key; ``plain_ok``: a value that
    is not encrypted yet is taken as the plain value (the migration from clear columns)."""
    if isinstance(value, str):
        if text_key_id(value) is None:
            if not plain_ok:
                raise FieldKeyError(f"{column}: a stored value is not encrypted")
            plain = value
        else:
            plain = decrypt_text(value, column, ring)
        return encrypt_text(plain, column, ring.current)
    blob = bytes(value)
    if binary_key_id(blob) is None:
        if not plain_ok:
            raise FieldKeyError(f"{column}: a stored value is not encrypted")
        plain_b = blob
    else:
        plain_b = decrypt_bytes(blob, column, ring)
    return encrypt_bytes(plain_b, column, ring.current)


def reencrypt_column(
    connection,
    table: str,
    column: str,
    label: str,
    *,
    ring: Keyring,
    plain_ok: bool = False,
    batch: int = 1000,
) -> int:
    """Re-encrypt (or, with ``plain_ok``, encrypt) every value of ``table.column`` not under the
    current key, in primary-key order by batches. Returns the number of values rewritten."""
    qn = connection.ops.quote_name
    t, c = qn(table), qn(column)
    last, done = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {c} FROM {t} WHERE id > %s AND {c} IS NOT NULL AND {c} <> '' ORDER BY id LIMIT %s",  # noqa: S608
                [last, batch],
            )
            rows = cursor.fetchall()
            if not rows:
                return done
            last = rows[-1][0]
            updates = []
            for pk, value in rows:
                if (
                    isinstance(value, str)
                    and value == ""
                    or not isinstance(value, str)
                    and len(value) == 0
                ):
                    continue
                if stored_key_id(value) == ring.current.id:
                    continue
                updates.append((reseal(value, label, ring, plain_ok=plain_ok), pk))
            if updates:
                cursor.executemany(f"UPDATE {t} SET {c} = %s WHERE id = %s", updates)  # noqa: S608
                done += len(updates)


def decrypt_column(connection, table: str, column: str, label: str, *, ring: Keyring) -> int:
    """Reverse of the migration: store the plain values again."""
    qn = connection.ops.quote_name
    t, c = qn(table), qn(column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {c} FROM {t} WHERE {c} IS NOT NULL AND {c} <> ''", [])  # noqa: S608
        updates = [
            (
                decrypt_text(v, label, ring)
                if isinstance(v, str)
                else decrypt_bytes(v, label, ring),
                pk,
            )
            for pk, v in cursor.fetchall()
            if stored_key_id(v)
        ]
        if updates:
            cursor.executemany(f"UPDATE {t} SET {c} = %s WHERE id = %s", updates)  # noqa: S608
    return len(updates)


def column_key_ids(connection, table: str, column: str) -> dict[str, int]:
    """How many values of ``table.column`` each key id encrypts ('plain' for unencrypted ones)."""
    qn = connection.ops.quote_name
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        c = qn(column)
        cursor.execute(f"SELECT {c} FROM {qn(table)} WHERE {c} IS NOT NULL AND {c} <> ''", [])  # noqa: S608
        for (value,) in cursor:
            if (isinstance(value, str) and not value) or (
                not isinstance(value, str) and not len(value)
            ):
                continue
            kid = stored_key_id(value) or "plain"
            counts[kid] = counts.get(kid, 0) + 1
    return counts


def migration_encrypt(*columns: tuple[str, str, str]):
    """A RunPython pair for a migration that turns clear columns into encrypted ones:
    ``columns`` are (table, column, label). Needs the field key only when rows exist."""

    def forward(apps, schema_editor):
        conn = schema_editor.connection
        for table, column, label in columns:
            if _has_values(conn, table, column):
                reencrypt_column(conn, table, column, label, ring=load_keyring(), plain_ok=True)

    def backward(apps, schema_editor):
        conn = schema_editor.connection
        for table, column, label in columns:
            if _has_values(conn, table, column):
                decrypt_column(conn, table, column, label, ring=load_keyring())
        _fire_deferred_checks(conn)  # the column type changes next, in the same transaction

    return forward, backward


def _fire_deferred_checks(connection) -> None:
    """PostgreSQL refuses to ALTER a table with deferred foreign-key checks still queued by an
    UPDATE in the same transaction ("pending trigger events"): run them now."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _has_values(connection, table: str, column: str) -> bool:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {qn(table)} WHERE {qn(column)} IS NOT NULL AND {qn(column)} <> '' LIMIT 1",  # noqa: S608
            [],
        )
        return cursor.fetchone() is not None
