"""Journal checkpoints: the head of every chain (entry count + last hash) at a given time.

A checkpoint is published where an attacker with the server does not reach: e-mailed to
witnesses, printed on the static status export, written into every backup's manifest, kept in a
file off the machine. Later, ``guichet journal verify --checkpoint`` proves that the journal
still extends what the checkpoint saw: a journal shortened or rewritten since fails, named at
the entry. The text form is short, line-based and readable by people::

    guichet-journal-checkpoint 1
    time 2026-11-24T02:00:00+00:00
    chain 0 12 5f0c…(64 hex)
    chain 42 5000 9a1e…(64 hex)
    signature ed25519 <base64 signature of the lines above>

Lines may also be separated by ``;`` so that a checkpoint fits in one shell argument.
The optional signature (Ed25519, private key in a file) lets a witness check with the public key
that a checkpoint came from the town, without being able to forge one.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .chain import Anchor

MAGIC = "guichet-journal-checkpoint 1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose signature does not hold."""


@dataclass(frozen=True)
class Checkpoint:
    time: dt.datetime
    chains: dict[int, tuple[int, str]]  # chain -> (count, hash of the count-th entry)
    signature: str | None = field(default=None, compare=False)  # base64 Ed25519 over body()

    def body(self) -> str:
        lines = [MAGIC, f"time {self.time.astimezone(dt.UTC).isoformat()}"]
        lines += [f"chain {c} {n} {h}" for c, (n, h) in sorted(self.chains.items())]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        if self.signature:
            return self.body() + f"signature ed25519 {self.signature}\n"
        return self.body()

    def one_line(self) -> str:
        return "; ".join(self.text().strip().splitlines())

    @property
    def total(self) -> int:
        return sum(n for n, _h in self.chains.values())

    def label(self) -> str:
        return f"the checkpoint of {self.time.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}"

    def anchors(self) -> dict[int, Anchor]:
        return {c: Anchor(count=n, hash=h, label=self.label()) for c, (n, h) in self.chains.items() if n > 0}

    def signed(self, key: Ed25519PrivateKey) -> Checkpoint:
        sig = base64.b64encode(key.sign(self.body().encode("utf-8"))).decode("ascii")
        return Checkpoint(time=self.time, chains=self.chains, signature=sig)

    def check_signature(self, public_key: Ed25519PublicKey) -> None:
        if not self.signature:
            raise CheckpointError("the checkpoint is not signed")
        try:
            public_key.verify(base64.b64decode(self.signature), self.body().encode("utf-8"))
        except (InvalidSignature, ValueError):
            raise CheckpointError(
                "the checkpoint's signature does not match: it was altered, or signed with another key"
            ) from None


def from_heads(heads: dict[int, tuple[int, str | None]], *, now: dt.datetime) -> Checkpoint:
    return Checkpoint(time=now, chains={c: (n, h or "0" * 64) for c, (n, h) in heads.items()})


def parse(text: str) -> Checkpoint:
    """Read a checkpoint from its text (newline- or ``;``-separated lines). Raises CheckpointError."""
    lines = [line.strip() for line in re.split(r"[\n;]", text or "") if line.strip()]
    if not lines or lines[0] != MAGIC:
        raise CheckpointError(f"not a journal checkpoint: it must start with '{MAGIC}'")
    time, chains, signature = None, {}, None
    for number, line in enumerate(lines[1:], start=2):
        word, _, rest = line.partition(" ")
        if signature is not None:
            raise CheckpointError(f"line {number}: nothing may follow the signature")
        if word == "time" and time is None:
            try:
                time = dt.datetime.fromisoformat(rest.strip())
            except ValueError:
                raise CheckpointError(f"line {number}: '{rest}' is not an ISO 8601 time") from None
            if time.tzinfo is None:
                raise CheckpointError(f"line {number}: the time must carry its UTC offset")
        elif word == "chain":
            parts = rest.split()
            if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or not _HEX64.match(parts[2]):
                raise CheckpointError(f"line {number}: expected 'chain <number> <count> <64 hex digits>', got '{line}'")
            chain = int(parts[0])
            if chain in chains:
                raise CheckpointError(f"line {number}: chain {chain} appears twice")
            chains[chain] = (int(parts[1]), parts[2])
        elif word == "signature":
            algorithm, _, value = rest.partition(" ")
            if algorithm != "ed25519" or not value.strip():
                raise CheckpointError(f"line {number}: expected 'signature ed25519 <base64>'")
            signature = value.strip()
        else:
            raise CheckpointError(f"line {number}: unexpected '{line}'")
    if time is None:
        raise CheckpointError("the checkpoint has no 'time' line")
    return Checkpoint(time=time, chains=chains, signature=signature)


def load(file_or_text: str) -> Checkpoint:
    """A checkpoint from a file path, or from the text itself."""
    if not file_or_text.lstrip().startswith(MAGIC):
        try:
            text = Path(file_or_text).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint file '{file_or_text}' (give a file or the checkpoint text)") from None
        except (OSError, UnicodeDecodeError) as e:
            raise CheckpointError(f"cannot read checkpoint file '{file_or_text}': {e}") from None
        return parse(text)
    return parse(file_or_text)


# --- Signing keys (Ed25519, PEM files) ------------------------------------------------------


def write_signing_key(path: Path) -> Ed25519PublicKey:
    """Create a private key file (mode 600, never overwritten) and its ``.pub`` beside it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_secret(path, pem)
    public = key.public_key()
    Path(f"{path}.pub").write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public


def write_secret(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only; refuse to replace an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CheckpointError(f"{path} already exists: refusing to overwrite a key") from None
    except OSError as e:
        raise CheckpointError(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise CheckpointError(f"signing key file '{path}' not found") from None
    except (ValueError, TypeError, OSError):
        raise CheckpointError(f"'{path}' is not an unencrypted Ed25519 private key in PEM") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"'{path}' is not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A public key file, or the public half of a private key file."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise CheckpointError(f"key file '{path}' not found or unreadable") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        return load_private_key(path).public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"'{path}' is not an Ed25519 public key")
    return key
