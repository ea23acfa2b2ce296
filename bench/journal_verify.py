"""Journal verification speed: entries verified per second on one core (target ≥ 100,000/s).

    .venv/bin/python bench/journal_verify.py                  # 1,000,000 entries, PostgreSQL
    .venv/bin/python bench/journal_verify.py --entries 2000000 --sqlite

Builds a scratch PostgreSQL database ``guichet_bench_journal`` (dropped first), writes a valid
journal of ``--entries`` entries over ``--chains`` chains with COPY (hashes computed in Python
exactly as ``journal_append`` does), then times a full verification, the way
``guichet journal verify`` runs it: rows streamed through a server-side cursor, each entry
re-hashed with SHA-256 and linked to the previous. With ``--sqlite``, the same on a SQLite file.
Prints the machine, the load, and the figures. Verification is single-threaded: one core.
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


def split(entries: int, chains: int) -> dict[int, int]:
    per = entries // chains
    return {c: per + (entries - per * chains if c == chains else 0) for c in range(1, chains + 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--chains", type=int, default=3, help="organisations (one chain each)")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--sqlite", action="store_true", help="also measure on SQLite")
    args = parser.parse_args()

    print("machine:", json.dumps(machine()))
    chains = split(args.entries, args.chains)
    url = fresh_pg(args.pg, "guichet_bench_journal")
    migrate(url, "journal")
    import psycopg

    t = time.perf_counter()
    with psycopg.connect(url) as conn:
        copy_journal(conn, chains)
    print(f"generated and COPYed {args.entries:,} entries in {len(chains)} chains: {time.perf_counter() - t:.1f} s")

    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "guichet.settings",
                       "GUICHET_INSECURE_DEV_KEY": "1", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from guichet.journal.backup import Database, verify_journal
    from guichet.journal.selectors import verify_all

    results = {}
    for label, run in (("PostgreSQL, guichet journal verify (Django server-side cursor)", verify_all),
                       ("PostgreSQL, raw psycopg named cursor (backup restore check)",
                        lambda: verify_journal(Database.from_url(url), workers=1))):
        cpu, wall = time.process_time(), time.perf_counter()
        verdicts = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert all(v.ok for v in verdicts) and sum(v.count for v in verdicts) == args.entries, verdicts
        results[label] = (wall, cpu)
        print(f"{label}: {args.entries:,} entries in {wall:.2f} s wall ({cpu:.2f} s CPU of this process): "
              f"{args.entries / wall:,.0f} entries/s")

    if args.sqlite:
        import sqlite3

        path = Path("/tmp/guichet_bench_journal.sqlite3")
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
