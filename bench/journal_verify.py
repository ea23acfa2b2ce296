"""Journal verification speed: entries verified per second on one core (target ≥ 100,000/s).

    .venv/bin/python bench/journal_verify.py                  # 1,000,000 entries, PostgreSQL
    .venv/bin/python bench/journal_verify.py --entries 2000000 --sqlite

Builds a scratch PostgreSQL database ``guichet_bench_journal`` (``--database``; dropped first), writes a valid
journal of ``--entries`` entries over ``--chains`` chains with COPY (hashes computed in Python
exactly as ``journal_append`` does), then times a full verification, the way
``guichet journal verify`` runs it: each chain streamed by PostgreSQL with COPY, each entry
re-hashed with SHA-256 and linked to the previous. With ``--sqlite``, the same on a SQLite file.
Prints the machine, the load, and the figures: wall time, CPU of the verifying process (and of
its PostgreSQL backend, which streams the rows on the other core). Verification is
single-threaded: one core for the hashing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

GENESIS = "0" * 64
OPERATIONS = ["bookings.booking.create", "bookings.booking.cancel", "bookings.basket.receive",
              "billing.invoice.issue", "status.changeset.publish"]
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
START = dt.datetime(2025, 9, 1, 6, 0, tzinfo=dt.UTC)


def machine() -> dict:
    info = {"python": platform.python_version(), "cores": os.cpu_count(), "load (uptime)": os.getloadavg()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with contextlib.suppress(OSError):
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, check=False).stdout.strip()
    return info


def chain_rows(chain: int, count: int, *, first_ref: int = 1):
    """A valid chain: yields (seq, occurred_at ISO, actor, channel, operation, refs JSON,
    details JSON, payload digest, prev hash, hash), hashed as ``journal.chain.entry_hash``."""
    prev = GENESIS
    sha = hashlib.sha256
    for seq in range(1, count + 1):
        at = (START + dt.timedelta(seconds=seq * 1.37)).isoformat()
        ref = first_ref + seq
        refs = [f"bookings.booking:{ref}"]
        details = {"status": "booked", "session": ref // 7, "unit": ref % 3 + 1}
        payload = sha(b"%d" % ref).hexdigest()
        operation = OPERATIONS[seq % len(OPERATIONS)]
        actor = f"user:{ref % 9000 + 1}"
        body = [chain, seq, at, actor, "web", operation, refs, details, payload, prev]
        digest = sha(_encode(body).encode("utf-8")).hexdigest()
        yield seq, at, actor, "web", operation, _encode(refs), _encode(details), payload, prev, digest
        prev = digest


COPY_COLUMNS = "chain, seq, occurred_at, actor, channel, operation, refs, details, payload_digest, prev_hash, hash"


def copy_journal(conn, chains: dict[int, int], *, first_ref: int = 1) -> int:
    """Write valid chains (``{chain: entries}``) and their heads with COPY (psycopg connection)."""
    total = 0
    with conn.cursor() as cur:
        for chain, count in chains.items():
            head = GENESIS
            with cur.copy(f"COPY journal_entry ({COPY_COLUMNS}) FROM STDIN") as copy:
                buf = io.StringIO()
                for row in chain_rows(chain, count, first_ref=first_ref):
                    buf.write(f"{chain}\t" + "\t".join(map(str, row)) + "\n")
                    head = row[-1]
                    if buf.tell() > (8 << 20):
                        copy.write(buf.getvalue())
                        buf = io.StringIO()
                copy.write(buf.getvalue())
            cur.execute("INSERT INTO journal_head (chain, seq, hash) VALUES (%s, %s, %s) "
                        "ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                        [chain, count, head])
            total += count
    conn.commit()
    return total


def fresh_pg(base_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"


def migrate(url: str, *apps: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "GUICHET_INSECURE_DEV_KEY": "1", "LOG_LEVEL": "WARNING"}
    subprocess.run([str(ROOT / ".venv" / "bin" / "guichet"), "migrate", *apps, "-v0"], env=env, check=True)


def _holds(url: str, entries: int) -> bool:
    """Whether ``url`` exists and holds a journal of exactly ``entries`` entries (for --reuse)."""
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT count(*) FROM journal_entry").fetchone()[0] == entries
    except psycopg.Error:
        return False


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a local process (the PostgreSQL backend), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def split(entries: int, chains: int) -> dict[int, int]:
    per = entries // chains
    return {c: per + (entries - per * chains if c == chains else 0) for c in range(1, chains + 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--chains", type=int, default=3, help="organisations (one chain each)")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--sqlite", action="store_true", help="also measure on SQLite")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the journal of a previous run if it has --entries entries")
    parser.add_argument("--database", default="guichet_bench_journal", metavar="NAME",
                        help="scratch PostgreSQL database (dropped first; default guichet_bench_journal)")
    args = parser.parse_args()

    print("machine:", json.dumps(machine()))
    chains = split(args.entries, args.chains)
    url = f"{args.pg}/{args.database}"
    import psycopg

    if not (args.reuse and _holds(url, args.entries)):
        url = fresh_pg(args.pg, args.database)
        migrate(url, "journal")
        t = time.perf_counter()
        with psycopg.connect(url) as conn:
            copy_journal(conn, chains)
        print(f"generated and COPYed {args.entries:,} entries in {len(chains)} chains: {time.perf_counter() - t:.1f} s")
    else:
        print(f"reusing the {args.entries:,} entries of {args.database}")

    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "guichet.settings",
                       "GUICHET_INSECURE_DEV_KEY": "1", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.db import connection

    from guichet.journal.backup import Database, verify_journal
    from guichet.journal.selectors import verify_all

    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    for label, run, pid in (("PostgreSQL, guichet journal verify (Django connection, COPY)", verify_all, backend),
                            ("PostgreSQL, raw psycopg connection, COPY (backup restore check)",
                             lambda: verify_journal(Database.from_url(url), workers=1), None)):
        load = os.getloadavg()[0]
        server = _cpu_of(pid) if pid else None
        waits = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        cpu, wall = time.process_time(), time.perf_counter()
        verdicts = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        # Voluntary context switches: how often the verifier blocked, waiting for rows. Few
        # means it never starved: on a quiet machine its wall time is its CPU time.
        waits = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - waits
        assert all(v.ok for v in verdicts) and sum(v.count for v in verdicts) == args.entries, verdicts
        server = f", {_cpu_of(pid) - server:.2f} s CPU of its PostgreSQL backend" if pid else ""
        print(f"{label}: {args.entries:,} entries in {wall:.2f} s wall ({cpu:.2f} s CPU of this process{server}): "
              f"{args.entries / wall:,.0f} entries/s wall, {args.entries / cpu:,.0f} per CPU-second; "
              f"blocked waiting for rows {waits} times (load {load:.1f} before, {os.getloadavg()[0]:.1f} after)")

    if args.sqlite:
        import sqlite3

        path = Path(f"/tmp/{args.database}.sqlite3")
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        migrate(f"sqlite:///{path}", "journal")
        t = time.perf_counter()
        db = sqlite3.connect(path)
        for chain, count in chains.items():
            rows = chain_rows(chain, count)
            head = [GENESIS]

            def tracked(rows=rows, head=head, chain=chain):
                for r in rows:
                    head[0] = r[-1]
                    # Stored as Django stores an aware datetime in SQLite: naive UTC text.
                    yield (chain, r[0], r[1][:-6].replace("T", " "), *r[2:])
            db.executemany(f"INSERT INTO journal_entry ({COPY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", tracked())
            db.execute("INSERT OR REPLACE INTO journal_head (chain, seq, hash) VALUES (?,?,?)", (chain, count, head[0]))
        db.commit()
        db.close()
        print(f"SQLite: generated {args.entries:,} entries in {time.perf_counter() - t:.1f} s")
        cpu, wall = time.process_time(), time.perf_counter()
        verdicts = verify_journal(Database.from_url(f"sqlite:///{path}"), workers=1)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert all(v.ok for v in verdicts) and sum(v.count for v in verdicts) == args.entries, verdicts
        print(f"SQLite, raw sqlite3 cursor: {args.entries:,} entries in {wall:.2f} s wall ({cpu:.2f} s CPU): "
              f"{args.entries / wall:,.0f} entries/s")
    print("load after (uptime):", os.getloadavg())


if __name__ == "__main__":
    main()
