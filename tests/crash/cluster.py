"""A private PostgreSQL cluster for fault injection: created with ``initdb`` in a temporary
directory, on its own port, started as its own process group so that ``kill -9`` reaches every
one of its processes (postmaster, backends, WAL writer) at once — like a machine losing power
while the operating system's page cache survives. Never the shared cluster other work uses."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

# Durable (the defaults, said out loud) and deliberately weakened settings (the negative control:
# a commit is acknowledged before its WAL is written; the WAL writer sleeps 10 s).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
WEAKENED = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "wal_writer_delay": "10000"}


def tools_available() -> str | None:
    """Why the cluster cannot be made here, or None."""
    for tool in ("initdb", "postgres", "pg_dump", "psql"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the private cluster"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="guichet-crash-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.settings = dict(DURABLE)
        self._user = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self._user = "postgres"
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        subprocess.run(["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                        "--no-sync", "--no-instructions"], check=True, capture_output=True, user=self._user)

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def start(self, settings: dict | None = None, timeout: float = 30) -> None:
        self.settings = dict(settings or DURABLE)
        args = ["postgres", "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir),
                "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=60", "-c", "shared_buffers=32MB"]
        for k, v in self.settings.items():
            args += ["-c", f"{k}={v}"]
        log = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 - kept open by the child
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     user=self._user)
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres did not start: {self.log_tail()}")

    def kill9(self) -> None:
        """``kill -9`` every process of the cluster at once."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        # Backends are in the postmaster's group; wait until none is left holding shared memory.
        until = time.monotonic() + 10
        while time.monotonic() < until and (self.data / "postmaster.pid").exists() and self._alive():
            time.sleep(0.05)

    def _alive(self) -> bool:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
            return True
        except (OSError, ValueError, IndexError):
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def destroy(self) -> None:
        # Thrown away: no shutdown checkpoint to wait for (seconds of fsync on a busy disk).
        self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join((self.dir / "postgres.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def copy_schema(self, source_url: str, db: str) -> None:
        """Create ``db`` with the schema of ``source_url`` (the migrated test database)."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        dump = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", source_url],
                              check=False, capture_output=True)
        if dump.returncode:
            raise RuntimeError(f"pg_dump failed: {dump.stderr.decode(errors='replace')[-2000:]}")
        load = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", self.url(db)], input=dump.stdout,
                              check=False, capture_output=True)
        if load.returncode:
            raise RuntimeError(f"psql failed: {load.stderr.decode(errors='replace')[-2000:]}")
