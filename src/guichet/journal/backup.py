"""Backups: one authenticated-encrypted archive holding the database, the uploaded files and a
manifest; verified and restored onto an empty database on a fresh machine with only the key.

The plaintext of an archive is a tar stream (encrypted by ``crypto.py``)::

    manifest.json                 what is inside: see ``Manifest`` below
    database/guichet.pgdump       PostgreSQL: ``pg_dump --format=custom`` (compressed)
    database/guichet.sqlite3      SQLite: a copy made with SQLite's online backup API
    media/<path>                  every uploaded file (MEDIA_ROOT)

The manifest's row counts, migrations and journal checkpoint are read in the same snapshot as
the dump (PostgreSQL: one REPEATABLE READ transaction whose snapshot ``pg_dump --snapshot``
shares; SQLite: from the copy itself), so a restore can be checked against them exactly.

Nothing is changed until everything has been decrypted, authenticated and checked: a wrong
key, a truncated or altered archive, or a non-empty target each stop the restore first.
See docs/guide-backups.md (operators) and ADR 0009 (format).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import dj_database_url

from . import checkpoint as cp
from .chain import Verdict
from .crypto import ArchiveError, DecryptingReader, EncryptingWriter, load_key_file, parse_key
from .selectors import heads, verify_with

FORMAT = "guichet-backup/1"
MANIFEST = "manifest.json"
DB_FILES = {"postgresql": "database/guichet.pgdump", "sqlite": "database/guichet.sqlite3"}
Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup, verification or restore that cannot go on; the message says why."""


def _quiet(_message: str) -> None:
    pass


# --- The key --------------------------------------------------------------------------------


def load_key(key_file: str | None = None) -> bytes:
    """The backup key: ``key_file``, else GUICHET_BACKUP_KEY_FILE, else GUICHET_BACKUP_KEY."""
    from .conf import setting

    try:
        if key_file:
            return load_key_file(key_file)
        if setting("GUICHET_BACKUP_KEY_FILE"):
            return load_key_file(setting("GUICHET_BACKUP_KEY_FILE"))
        if setting("GUICHET_BACKUP_KEY"):
            return parse_key(setting("GUICHET_BACKUP_KEY"), "GUICHET_BACKUP_KEY")
    except ArchiveError as e:
        raise BackupError(str(e)) from None
    raise BackupError(
        "no backup key: give --key-file FILE, or set GUICHET_BACKUP_KEY_FILE (or GUICHET_BACKUP_KEY); "
        "'guichet backup keygen FILE' creates one"
    )


# --- Databases ------------------------------------------------------------------------------


@dataclass
class Database:
    """A database to back up or restore into, described as Django describes it."""

    settings: dict
    django_alias: str | None = None  # the live Django connection, when it is one

    @classmethod
    def from_url(cls, url: str) -> Database:
        try:
            return cls(settings=dj_database_url.parse(url))
        except (ValueError, KeyError) as e:
            raise BackupError(f"--database-url: cannot read '{url}': {e}") from None

    @classmethod
    def from_django(cls, alias: str = "default") -> Database:
        from django.db import connections

        return cls(settings=dict(connections[alias].settings_dict), django_alias=alias)

    @property
    def engine(self) -> str:
        engine = self.settings["ENGINE"]
        if "postgresql" in engine:
            return "postgresql"
        if "sqlite3" in engine:
            return "sqlite"
        raise BackupError(f"backups support PostgreSQL and SQLite, not {engine}")

    @property
    def name(self) -> str:
        return str(self.settings["NAME"])

    def describe(self) -> str:
        if self.engine == "sqlite":
            return f"SQLite {self.name}"
        s = self.settings
        return f"PostgreSQL {s.get('USER') or ''}@{s.get('HOST') or 'localhost'}:{s.get('PORT') or 5432}/{self.name}"

    def _is_memory(self) -> bool:
        return self.name == ":memory:" or "mode=memory" in self.name

    def pg_env(self) -> dict:
        s = self.settings
        env = dict(os.environ)
        for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
            if s.get(key):
                env[var] = str(s[key])
        env["PGDATABASE"] = self.name
        return env

    @contextlib.contextmanager
    def connect(self) -> Iterator:
        """A raw DB-API connection (not Django's), closed afterwards."""
        if self.engine == "sqlite":
            if self.name == ":memory:":
                raise BackupError("a private in-memory SQLite database cannot be opened from outside")
            # A shared in-memory database (the test suite's) is opened by its URI; plain values,
            # without Django's type converters, as any other copy is read.
            conn = sqlite3.connect(self.name, uri=self.name.startswith("file:"))
        else:
            import psycopg

            s = self.settings
            try:
                conn = psycopg.connect(
                    dbname=self.name, host=s.get("HOST") or None, port=s.get("PORT") or None,
                    user=s.get("USER") or None, password=s.get("PASSWORD") or None,
                )
            except psycopg.OperationalError as e:
                raise BackupError(f"cannot connect to {self.describe()}: {str(e).strip()}") from None
        try:
            yield conn
        finally:
            conn.close()

    @property
    def placeholder(self) -> str:
        return "?" if self.engine == "sqlite" else "%s"


def _tables(cursor, engine: str) -> list[str]:
    if engine == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    else:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY tablename"
        )
    return [r[0] for r in cursor.fetchall()]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def row_counts(cursor, engine: str) -> dict[str, int]:
    counts = {}
    for table in _tables(cursor, engine):
        cursor.execute(f"SELECT count(*) FROM {_quote(table)}")  # noqa: S608 (a table name from the catalogue)
        counts[table] = int(cursor.fetchone()[0])
    return counts


def _migrations(cursor) -> list[str]:
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    return [f"{app}.{name}" for app, name in cursor.fetchall()]


def _snapshot_facts(cursor, engine: str, now: dt.datetime) -> dict:
    """Row counts, applied migrations and the journal checkpoint, read through ``cursor``."""
    tables = _tables(cursor, engine)
    if "django_migrations" not in tables or "journal_head" not in tables:
        raise BackupError("the database has no Guichet schema (run 'guichet migrate' first)")
    migrations = _migrations(cursor)
    checkpoint = cp.from_heads(heads(cursor), now=now)
    return {
        "rows": row_counts(cursor, engine),
        "schema": {"migrations": migrations, "digest": hashlib.sha256("\n".join(migrations).encode()).hexdigest()},
        "journal_checkpoint": checkpoint.text(),
    }


def _run(args: list[str], env: dict, what: str) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise BackupError(f"{args[0]} not found: install PostgreSQL's client tools") from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({args[0]} exit code {done.returncode}): {done.stderr.strip()[-800:]}")


def _dump(db: Database, dest: Path, now: dt.datetime) -> dict:
    """Write the database to ``dest`` and return the facts of that same snapshot."""
    if db.engine == "sqlite":
        with db.connect() as source:
            target = sqlite3.connect(dest)
            try:
                source.backup(target)  # SQLite's online backup API: a consistent copy, writers may go on
            finally:
                target.close()
        copy = sqlite3.connect(dest)
        try:
            return _snapshot_facts(copy.cursor(), "sqlite", now)
        finally:
            copy.close()
    import psycopg

    with db.connect() as conn:
        # One snapshot for the facts and for pg_dump: the manifest describes exactly the dump.
        conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        facts = _snapshot_facts(conn.cursor(), "postgresql", now)
        _run(
            ["pg_dump", "--format=custom", "--compress=1", f"--snapshot={snapshot}", "--file", str(dest), db.name],
            db.pg_env(), "pg_dump",
        )
        facts["server_version"] = conn.info.server_version
        conn.rollback()
    return facts


# --- Files ----------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _media_files(media_root: Path) -> list[Path]:
    if not media_root.exists():
        return []
    return sorted(p for p in media_root.rglob("*") if p.is_file() and not p.is_symlink())


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _Meter:
    """Reports progress every 10 % of ``total`` bytes."""

    def __init__(self, total: int, verb: str, progress: Progress):
        self.total, self.verb, self.progress = max(total, 1), verb, progress
        self.done, self.next_step, self.started = 0, 10, time.perf_counter()

    def __call__(self, n: int) -> None:
        self.done += n
        percent = self.done * 100 // self.total
        if percent >= self.next_step and percent < 100 and self.total >= 20_000_000:  # quiet when small
            self.progress(f"  {self.verb} {percent:3d} % ({_human(self.done)} of {_human(self.total)})")
            self.next_step = percent // 10 * 10 + 10


# --- Create ---------------------------------------------------------------------------------


@dataclass
class Summary:
    archive: Path
    manifest: dict
    archive_bytes: int = 0
    seconds: dict = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.manifest["rows"].values())

    @property
    def checkpoint(self) -> cp.Checkpoint:
        return cp.parse(self.manifest["journal_checkpoint"])


def create_backup(
    *, archive: Path, key: bytes, db: Database, media_root: Path, progress: Progress = _quiet,
    now: dt.datetime | None = None,
) -> Summary:
    """Write one encrypted archive of ``db`` and ``media_root`` to ``archive`` (never replaced)."""
    now = now or dt.datetime.now(dt.UTC)
    archive = Path(archive)
    if archive.exists():
        raise BackupError(f"{archive} already exists: choose another name (archives are never overwritten)")
    if not archive.parent.is_dir():
        raise BackupError(f"directory {archive.parent} does not exist")
    seconds = {}
    with tempfile.TemporaryDirectory(prefix=".guichet-backup-", dir=archive.parent) as tmp:
        dump = Path(tmp) / "db"
        started = time.perf_counter()
        progress(f"dumping the database ({db.describe()})…")
        facts = _dump(db, dump, now)
        seconds["dump"] = time.perf_counter() - started
        progress(f"  {_human(dump.stat().st_size)}, {sum(facts['rows'].values())} rows in {len(facts['rows'])} tables "
                 f"({seconds['dump']:.1f} s)")
        started = time.perf_counter()
        files = _media_files(media_root)
        media = [{"path": f"media/{p.relative_to(media_root).as_posix()}", "bytes": p.stat().st_size,
                  "sha256": _sha256_file(p)} for p in files]
        db_member = DB_FILES[db.engine]
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "guichet_version": importlib.metadata.version("guichet"),
            "host": socket.gethostname(),
            "database": {"engine": db.engine, "file": db_member, "bytes": dump.stat().st_size,
                         "sha256": _sha256_file(dump), "server_version": facts.pop("server_version", None)},
            **facts,
            "media": media,
        }
        progress(f"uploaded files: {len(media)} ({_human(sum(m['bytes'] for m in media))})")
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        total = len(manifest_bytes) + manifest["database"]["bytes"] + sum(m["bytes"] for m in media)
        meter = _Meter(total, "encrypted", progress)
        progress(f"encrypting into {archive}…")
        partial = Path(tmp) / "archive.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            writer = EncryptingWriter(out, key)
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, MANIFEST, manifest_bytes, now)
                meter(len(manifest_bytes))
                _add_file(tar, db_member, dump, meter)
                for member, path in zip(media, files, strict=True):
                    _add_file(tar, member["path"], path, meter)
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(partial, archive)  # never replaces a file that appeared meanwhile
        except FileExistsError:
            raise BackupError(f"{archive} appeared while the backup ran: not replaced") from None
        _fsync_dir(archive.parent)
        seconds["encrypt"] = time.perf_counter() - started
    return Summary(archive=archive, manifest=manifest, archive_bytes=archive.stat().st_size, seconds=seconds)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, now: dt.datetime) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
    tar.addfile(info, io.BytesIO(data))


class _Counting:
    def __init__(self, fh, meter: _Meter):
        self.fh, self.meter = fh, meter

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.meter(len(data))
        return data


def _add_file(tar: tarfile.TarFile, name: str, path: Path, meter: _Meter) -> None:
    info = tarfile.TarInfo(name)
    stat = path.stat()
    info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o600
    with path.open("rb") as fh:
        tar.addfile(info, _Counting(fh, meter))


# --- Read back (verify and restore share it) ------------------------------------------------


def _safe_member(member: tarfile.TarInfo) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if (not member.isfile() or path.is_absolute() or ".." in path.parts
            or not (member.name == MANIFEST or path.parts[0] in ("database", "media"))):
        raise BackupError(f"the archive holds an unexpected entry '{member.name}': refusing it")
    return path


def _unpack(archive: Path, key: bytes, into: Path, progress: Progress, *, keep_media: bool) -> dict:
    """Decrypt and authenticate the whole archive, write the database file (and the media if
    ``keep_media``) under ``into``, check every checksum; return the manifest."""
    try:
        src = archive.open("rb")
    except FileNotFoundError:
        raise BackupError(f"archive {archive} not found") from None
    except OSError as e:
        raise BackupError(f"cannot read archive {archive}: {e.strerror}") from None
    size = archive.stat().st_size
    meter = _Meter(size, "decrypted and checked", progress)
    manifest = None
    seen = set()
    try:
        with src:
            reader = DecryptingReader(src, key, on_chunk=meter)
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    path = _safe_member(member)
                    if manifest is None:
                        if member.name != MANIFEST:
                            raise BackupError("the archive does not start with its manifest")
                        manifest = _read_manifest(tar.extractfile(member).read())
                        expected = {manifest["database"]["file"]: manifest["database"]["sha256"]}
                        expected |= {m["path"]: m["sha256"] for m in manifest["media"]}
                        continue
                    if member.name not in expected or member.name in seen:
                        raise BackupError(f"the archive holds '{member.name}', which its manifest does not list")
                    seen.add(member.name)
                    write = member.name == manifest["database"]["file"] or keep_media
                    digest = _copy_out(tar.extractfile(member), into / Path(*path.parts) if write else None)
                    if digest != expected[member.name]:
                        raise BackupError(f"'{member.name}' does not match its checksum in the manifest")
            reader.drain()
    except ArchiveError as e:
        raise BackupError(str(e)) from None
    except tarfile.TarError as e:
        raise BackupError(f"the archive's content is not readable: {e}") from None
    if manifest is None:
        raise BackupError("the archive is empty: no manifest")
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"the archive lacks {len(missing)} file(s) its manifest lists, first '{missing[0]}'")
    return manifest


def _copy_out(fh, dest: Path | None) -> str:
    h = hashlib.sha256()
    out = None
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = dest.open("wb")
    try:
        while block := fh.read(1 << 20):
            h.update(block)
            if out:
                out.write(block)
    finally:
        if out:
            out.close()
    return h.hexdigest()


def _read_manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BackupError("the manifest is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"unknown archive format {manifest.get('format') if isinstance(manifest, dict) else '?'} "
                          f"(this Guichet reads {FORMAT})")
    return manifest


def _check_database_file(manifest: dict, db_file: Path, progress: Progress) -> list[Verdict]:
    """SQLite: integrity check, row counts and journal of the copy; PostgreSQL: the dump's
    table of contents is readable and every table's data holds the manifest's row count."""
    if manifest["database"]["engine"] == "postgresql":
        _run(["pg_restore", "--list", str(db_file)], dict(os.environ), "reading the PostgreSQL dump")
        counts = dump_row_counts(db_file)
        _compare_counts(manifest["rows"], counts)
        progress(f"row counts of the dump match the manifest: {sum(counts.values())} rows in {len(counts)} tables")
        return []
    copy = Database(settings={"ENGINE": "django.db.backends.sqlite3", "NAME": str(db_file)})
    with copy.connect() as conn:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        if integrity != "ok":
            raise BackupError(f"the SQLite database in the archive is damaged: {integrity}")
    return check_restored(copy, manifest, progress)


def _compare_counts(expected: dict[str, int], counts: dict[str, int]) -> None:
    diff = [f"{t}: {expected.get(t, 'absent')} expected, {counts.get(t, 'absent')} found"
            for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t)]
    if diff:
        raise BackupError(f"row counts differ from the manifest in {len(diff)} table(s): " + "; ".join(diff[:5]))


def _copy_table(line: bytes) -> str:
    """The table of a ``COPY schema.table (columns) FROM stdin;`` line of a pg_restore script
    (each part of the name possibly quoted, ``""`` standing for ``"``)."""
    text = line[5:].decode("utf-8")
    part, quoted, i = "", False, 0
    while i < len(text):
        c = text[i]
        if quoted and c == '"' and text[i + 1:i + 2] == '"':
            part += '"'
            i += 1
        elif c == '"':
            quoted = not quoted
        elif not quoted and c == ".":
            part = ""  # what came before was the schema
        elif not quoted and c == " ":
            break
        else:
            part += c
        i += 1
    return part


def dump_row_counts(db_file: Path) -> dict[str, int]:
    """Every table's row count in a ``pg_dump --format=custom`` file, counted in its data.

    ``pg_restore --data-only --file=-`` writes each table's data as a ``COPY ... FROM stdin;``
    block, one line per row (COPY's text format escapes newlines), ended by ``\\.``. Nothing is
    restored anywhere: the dump is only decompressed and read, once."""
    counts: dict[str, int] = {}
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(  # noqa: S603
                ["pg_restore", "--data-only", "--file=-", str(db_file)],  # noqa: S607
                stdout=subprocess.PIPE, stderr=errors, env=dict(os.environ),
            )
        except FileNotFoundError:
            raise BackupError("pg_restore not found: install PostgreSQL's client tools") from None
        table, rows = None, 0
        with proc.stdout as out:
            for line in out:
                if table is None:
                    if line.startswith(b"COPY ") and line.endswith(b" FROM stdin;\n"):
                        table, rows = _copy_table(line), 0
                elif line == b"\\.\n":
                    counts[table] = counts.get(table, 0) + rows
                    table = None
                else:
                    rows += 1
        if proc.wait() != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()[-800:]
            raise BackupError(f"reading the PostgreSQL dump's data failed (pg_restore exit code {proc.returncode}): "
                              f"{message}")
    if table is not None:
        raise BackupError(f"the PostgreSQL dump's data ends inside table {table}")
    return counts


def check_restored(db: Database, manifest: dict, progress: Progress) -> list[Verdict]:
    """The database holds exactly what the manifest says: same row count in every table, the
    journal intact and ending exactly at the manifest's checkpoint."""
    with db.connect() as conn:
        counts = row_counts(conn.cursor(), db.engine)
        if db.engine == "postgresql":
            conn.rollback()
    _compare_counts(manifest["rows"], counts)
    progress(f"row counts match the manifest: {sum(counts.values())} rows in {len(counts)} tables")
    checkpoint = cp.parse(manifest["journal_checkpoint"])
    verdicts = verify_journal(db, anchors=checkpoint.anchors())
    bad = [v for v in verdicts if not v.ok]
    if bad:
        v = bad[0]
        raise BackupError(f"journal chain {v.chain} BROKEN at entry #{v.problem.seq}: {v.problem.reason}")
    short = [v for v in verdicts if v.count != checkpoint.chains.get(v.chain, (0, ""))[0]]
    if short:
        raise BackupError(f"journal chain {short[0].chain} holds {short[0].count} entries, the manifest says "
                          f"{checkpoint.chains.get(short[0].chain, (0, ''))[0]}")
    progress(f"journal verified: {sum(v.count for v in verdicts)} entries in {len(verdicts)} chain(s), "
             f"ending exactly at the manifest's checkpoint")
    return verdicts


def _verify_chains(settings: dict, chains: list[int], anchors) -> list[Verdict]:
    """Verify some chains of ``settings``' database on one raw connection (one process)."""
    db = Database(settings=settings)
    with db.connect() as conn:  # PostgreSQL: in a transaction, where the chains are streamed with COPY

        @contextlib.contextmanager
        def cursor(chunked: bool = False):
            c = conn.cursor()
            try:
                yield c
            finally:
                c.close()

        try:
            return verify_with(cursor, engine=db.engine, anchors=anchors, only=chains)
        finally:
            if db.engine == "postgresql":
                conn.rollback()


def verify_journal(db: Database, *, anchors=None, workers: int | None = None) -> list[Verdict]:
    """Verify every chain of ``db`` through raw connections (COPY on PostgreSQL). Chains are independent: with ``workers`` > 1 (default: one per core, for a
    database other processes can open), they are verified in parallel processes, each on one
    core, the largest first."""
    anchors = anchors or {}
    with db.connect() as conn:
        recorded = heads(conn.cursor())
        if db.engine == "postgresql":
            conn.rollback()
    chains = sorted(set(recorded) | set(anchors), key=lambda c: -max(recorded.get(c, (0, ""))[0],
                                                                     anchors[c].count if c in anchors else 0))
    workers = min(workers or os.cpu_count() or 1, len(chains))
    if workers <= 1 or db._is_memory():
        verdicts = _verify_chains(db.settings, chains, anchors)
    else:
        import concurrent.futures
        import multiprocessing

        # "spawn": a fresh interpreter, so no database connection of this process is shared.
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = pool.map(_verify_chains, [db.settings] * len(chains), [[c] for c in chains],
                             [anchors] * len(chains))
            verdicts = [v for part in parts for v in part]
    return sorted(verdicts, key=lambda v: v.chain)


# --- Verify ---------------------------------------------------------------------------------


def verify_backup(*, archive: Path, key: bytes, progress: Progress = _quiet) -> Summary:
    """Decrypt and authenticate every byte, check every checksum, and check the database in
    the archive (SQLite: integrity, row counts, journal; PostgreSQL: the dump is readable and
    every table holds the manifest's row count)."""
    started = time.perf_counter()
    archive = Path(archive)
    with tempfile.TemporaryDirectory(prefix=".guichet-verify-") as tmp:
        progress(f"reading {archive}…")
        manifest = _unpack(archive, key, Path(tmp), progress, keep_media=False)
        progress(f"authenticated and decrypted: every checksum matches ({1 + len(manifest['media'])} files)")
        verdicts = _check_database_file(manifest, Path(tmp) / manifest["database"]["file"], progress)
    summary = Summary(archive=archive, manifest=manifest, archive_bytes=archive.stat().st_size, verdicts=verdicts)
    summary.seconds["verify"] = time.perf_counter() - started
    if manifest["database"]["engine"] == "postgresql":
        summary.notes.append("the PostgreSQL dump is readable and holds the manifest's row counts; its journal "
                             "is verified by a restore (the quarterly drill, docs/guide-backups.md)")
    return summary


# --- Restore --------------------------------------------------------------------------------


def _check_empty(db: Database) -> None:
    if db.engine == "sqlite" and not db._is_memory():
        path = Path(db.name)
        if not path.exists():
            if not path.parent.is_dir():
                raise BackupError(f"directory {path.parent} does not exist")
            return
    with db.connect() as conn:
        tables = _tables(conn.cursor(), db.engine)
        if db.engine == "postgresql":
            conn.rollback()
    if tables:
        raise BackupError(
            f"the target database {db.describe()} is not empty ({len(tables)} tables, e.g. {tables[0]}): "
            "restore only into an empty database (PostgreSQL: dropdb and createdb; SQLite: a new file)"
        )
    if db._is_memory():
        raise BackupError("cannot restore into an in-memory SQLite database: give a file (DATABASE_URL)")


def _check_media_empty(media_root: Path) -> None:
    if media_root.exists() and (not media_root.is_dir() or any(media_root.iterdir())):
        raise BackupError(f"the uploaded-files directory {media_root} is not empty: restore only into an empty one")


def _known_migrations() -> set[str] | None:
    try:
        from django.db.migrations.loader import MigrationLoader

        return {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}
    except Exception:  # noqa: BLE001 - only a hint for the operator
        return None


def restore_backup(
    *, archive: Path, key: bytes, db: Database, media_root: Path, progress: Progress = _quiet,
) -> Summary:
    """Restore ``archive`` into the empty ``db`` and the empty ``media_root``, then check the
    result against the manifest (row counts, journal up to its checkpoint)."""
    started = time.perf_counter()
    archive = Path(archive)
    _check_empty(db)
    _check_media_empty(media_root)
    seconds = {}
    work_parent = media_root.parent if media_root.parent.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=".guichet-restore-", dir=work_parent) as tmp:
        tmp = Path(tmp)
        progress(f"reading {archive}…")
        manifest = _unpack(archive, key, tmp, progress, keep_media=True)
        seconds["decrypt"] = time.perf_counter() - started
        progress(f"authenticated and decrypted: every checksum matches ({1 + len(manifest['media'])} files)")
        if manifest["database"]["engine"] != db.engine:
            raise BackupError(f"this archive holds a {manifest['database']['engine']} database; "
                              f"the target is {db.describe()}")
        known = _known_migrations()
        unknown = sorted(set(manifest["schema"]["migrations"]) - known) if known is not None else []
        if unknown:
            raise BackupError(f"the archive comes from a newer Guichet ({manifest['guichet_version']}): "
                              f"migration {unknown[0]} is unknown here; install that version first")
        _check_empty(db)  # again: nothing may have appeared meanwhile
        db_file = tmp / manifest["database"]["file"]
        step = time.perf_counter()
        progress(f"restoring the database into {db.describe()}…")
        if db.engine == "postgresql":
            env = db.pg_env()
            # Index builds are most of a restore's time: give them memory (this session only).
            env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c maintenance_work_mem=256MB".strip()
            _run(["pg_restore", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
                  "--dbname", db.name, str(db_file)], env, "pg_restore")
        else:
            target = Path(db.name)
            for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                stale.unlink(missing_ok=True)  # an empty file (checked above) and its leftovers
            staged = target.with_name(f".{target.name}.restoring")
            shutil.copyfile(db_file, staged)
            os.replace(staged, target)
        seconds["database"] = time.perf_counter() - step
        media_src = tmp / "media"
        if media_src.exists():
            media_root.mkdir(parents=True, exist_ok=True)
            for child in media_src.iterdir():
                shutil.move(str(child), str(media_root / child.name))
        progress(f"uploaded files restored: {len(manifest['media'])} into {media_root}")
    step = time.perf_counter()
    verdicts = check_restored(db, manifest, progress)
    seconds["check"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - started
    summary = Summary(archive=archive, manifest=manifest, archive_bytes=archive.stat().st_size,
                      seconds=seconds, verdicts=verdicts)
    known = _known_migrations()
    if known is not None and known - set(manifest["schema"]["migrations"]):
        summary.notes.append("this Guichet has newer migrations than the archive: run 'guichet migrate' now")
    return summary
