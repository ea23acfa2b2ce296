"""Authenticated encryption of backup archives: AES-256-GCM in the STREAM construction.

An archive is a header followed by chunks::

    header  = b"GCHTBAK1" | key id (8) | salt (32) | nonce prefix (7) | chunk size (4, big-endian)
    chunk i = AES-256-GCM(subkey, nonce = prefix | i (4, big-endian) | last (1), plaintext_i,
                          associated data = header)

- ``subkey = HKDF-SHA256(master key, salt, "guichet backup v1")``: every archive has its own key,
  so random nonces never repeat across archives.
- Each chunk is authenticated together with the whole header (no header field can be changed)
  and with its position (no chunk can be moved, dropped or duplicated), and the last chunk
  carries a flag, so an archive cut at a chunk boundary is caught too (Hoang, Reyhanitabar,
  Rogaway, Vizár, "Online authenticated-encryption and its nonce-reuse misuse-resistance",
  2015; the same construction as Tink's streaming AEAD and age's payload).
- The key id (an HMAC of a constant under the master key) tells "wrong key" from "altered
  archive" in the error message; it reveals nothing about the key.

The master key is 32 random bytes, kept in a file (``guichet backup keygen``) or in the
environment, never in the database (ADR 0009).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from guichet.common.crypto import decode_key

MAGIC = b"GCHTBAK1"
KEY_PREFIX = "guichet-backup-key-1:"
CHUNK = 1 << 20  # 1 MiB of plaintext per chunk
TAG = 16
_HEADER = struct.Struct(">8s8s32s7sI")
HEADER_SIZE = _HEADER.size


class ArchiveError(Exception):
    """An archive that cannot be trusted: wrong key, truncated, altered, not an archive."""


def key_id(key: bytes) -> str:
    return hmac.new(key, b"guichet backup key id", hashlib.sha256).hexdigest()[:16]


def new_key_text() -> str:
    return KEY_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii") + "\n"


def parse_key(text: str, where: str) -> bytes:
    key = decode_key(text, KEY_PREFIX)
    if key is None:
        raise ArchiveError(f"{where} does not hold a backup key (expected '{KEY_PREFIX}' and 32 bytes in base64)")
    return key


def load_key_file(path: str | Path) -> bytes:
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        raise ArchiveError(f"backup key file '{path}' not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ArchiveError(f"cannot read backup key file '{path}': {e}") from None
    return parse_key(text, f"key file '{path}'")


def _subkey(key: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"guichet backup v1").derive(key)
    return AESGCM(derived)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


class EncryptingWriter:
    """A write-only file object: what is written to it reaches ``out`` encrypted."""

    def __init__(self, out: BinaryIO, key: bytes, chunk_size: int = CHUNK):
        salt, prefix = os.urandom(32), os.urandom(7)
        self.header = _HEADER.pack(MAGIC, bytes.fromhex(key_id(key)), salt, prefix, chunk_size)
        self._aead, self._prefix, self._size = _subkey(key, salt), prefix, chunk_size
        self._out, self._buffer, self._counter = out, bytearray(), 0
        self.plain_bytes = 0
        out.write(self.header)

    def write(self, data) -> int:
        self._buffer += data
        self.plain_bytes += len(data)
        while len(self._buffer) > self._size:  # keep at least one byte back: the last chunk is flagged
            self._emit(bytes(self._buffer[: self._size]), last=False)
            del self._buffer[: self._size]
        return len(data)

    def _emit(self, plain: bytes, last: bool) -> None:
        if self._counter >= 0xFFFFFFFF:
            raise ArchiveError("archive too large for one key stream")
        self._out.write(self._aead.encrypt(_nonce(self._prefix, self._counter, last), plain, self.header))
        self._counter += 1

    def close(self) -> None:
        """Write the last chunk (possibly empty). Must be called once, after the last write."""
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()

    def flush(self) -> None:
        pass


def read_header(src: BinaryIO, key: bytes) -> tuple[bytes, AESGCM, bytes, int]:
    header = src.read(HEADER_SIZE)
    if len(header) < len(MAGIC) or header[: len(MAGIC)] != MAGIC:
        raise ArchiveError("not a Guichet backup archive (its first bytes are not 'GCHTBAK1')")
    if len(header) < HEADER_SIZE:
        raise ArchiveError("the archive is truncated: it ends inside its header")
    _magic, kid, salt, prefix, chunk_size = _HEADER.unpack(header)
    if kid.hex() != key_id(key):
        raise ArchiveError(
            f"wrong key: this archive was encrypted with key {kid.hex()}, the key given is {key_id(key)}"
        )
    if not 1024 <= chunk_size <= (64 << 20):
        raise ArchiveError("the archive header is altered (impossible chunk size)")
    return header, _subkey(key, salt), prefix, chunk_size


def decrypt_chunks(src: BinaryIO, key: bytes) -> Iterator[bytes]:
    """The plaintext, chunk by chunk; raises ``ArchiveError`` at the first chunk that does not
    authenticate (altered, reordered, truncated, or from another archive)."""
    header, aead, prefix, chunk_size = read_header(src, key)
    size = chunk_size + TAG
    counter = 0
    current = src.read(size)
    while True:
        following = src.read(size) if len(current) == size else b""
        last = not following
        if len(current) < TAG:
            raise ArchiveError(f"the archive is truncated: it ends inside chunk {counter + 1}")
        try:
            yield aead.decrypt(_nonce(prefix, counter, last), current, header)
        except InvalidTag:
            if last:
                try:
                    aead.decrypt(_nonce(prefix, counter, False), current, header)
                except InvalidTag:
                    pass
                else:
                    raise ArchiveError(
                        f"the archive is truncated: it stops after chunk {counter + 1}, which is not its last"
                    ) from None
                raise ArchiveError(
                    f"the archive is truncated or altered: its last chunk ({counter + 1}) does not authenticate"
                ) from None
            raise ArchiveError(
                f"the archive is altered: chunk {counter + 1} (bytes {HEADER_SIZE + counter * size} to "
                f"{HEADER_SIZE + counter * size + len(current)}) does not authenticate"
            ) from None
        if last:
            return
        current = following
        counter += 1


class DecryptingReader:
    """A read-only file object over ``decrypt_chunks`` (for ``tarfile`` in stream mode)."""

    def __init__(self, src: BinaryIO, key: bytes, on_chunk=None):
        self._chunks = decrypt_chunks(src, key)
        self._buffer = bytearray()
        self._done = False
        self._on_chunk = on_chunk

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buffer) < n):
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                break
            self._buffer += chunk
            if self._on_chunk:
                self._on_chunk(len(chunk))
        if n < 0:
            n = len(self._buffer)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def drain(self) -> None:
        """Read to the end, so that the last chunk's authentication is checked."""
        while self.read(CHUNK):
            pass
