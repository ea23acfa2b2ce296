"""The restore drill at town scale: backup, restore onto an empty PostgreSQL, full verification.

    .venv/bin/python bench/backup_drill.py                    # 100,000 inhabitants
    .venv/bin/python bench/backup_drill.py --children 2500 --journal 200000   # a quick run

A synthetic town of 100,000 inhabitants: 45,000 households, 25,000 children, each booked on
120 days (3,000,000 bookings; one place a day, each day at one of the day's centres), and a
journal of 2,000,000 entries forming valid chains.
Built in a scratch database ``guichet_bench_backup`` (``--database``; dropped first): the demo towns' catalogue
and activities (the demo loaders), then households, children and bookings set-based with
``generate_series``, and the journal with COPY (hashes computed in Python exactly as
``journal_append`` does).

Then, as an operator runs it, with the ``guichet`` command (goal: ≤ 5 minutes together):

1. ``guichet backup create``   (pg_dump in the manifest's snapshot, AES-256-GCM STREAM)
2. ``guichet backup verify``   (decrypt and authenticate every byte, every checksum, every
   table's row count in the dump)
3. ``guichet backup restore``  onto the empty database ``guichet_bench_backup_restore`` (``--database`` + ``_restore``)
   (pg_restore in one transaction, then every table's row count and the whole journal verified
   against the manifest's checkpoint)

Prints the machine, the load, each phase's time and the sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT / "src"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench.journal_verify import copy_journal, fresh_pg, machine, migrate  # noqa: E402

GUICHET = str(ROOT / ".venv" / "bin" / "guichet")


def populate(url: str, *, households: int, children: int, per_child: int, journal: int) -> dict:
    import psycopg

    env = {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "guichet.settings", "GUICHET_INSECURE_DEV_KEY": "1",
           "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    import django

    django.setup()
    from guichet.bookings.demo import load_bookings_demo
    from guichet.common.actor import Actor
    from guichet.demo import seed_paths
    from guichet.status.notice import import_notice

    for path in seed_paths():
        import_notice(path.read_text(encoding="utf-8"), path.name, actor=Actor.cli())
    load_bookings_demo()
    timings = {}
    with psycopg.connect(url) as conn:
        # A child is in one place a day (one booking per child, activity and day): the days
        # offered are the organisation's distinct (activity, date), each at one of its centres.
        orgs = [r[0] for r in conn.execute(
            """SELECT organisation_id FROM (SELECT DISTINCT organisation_id, activity_id, date
                                            FROM bookings_session) d
               GROUP BY 1 HAVING count(*) >= %s ORDER BY 1""", [per_child])]
        if not orgs:
            raise SystemExit(f"no organisation has {per_child} days of activity in the demo data")
        t = time.perf_counter()
        conn.execute(
            """INSERT INTO bookings_household (organisation_id, reference, display_name, resident, email, created_at)
               SELECT (%(orgs)s::bigint[])[1 + g %% cardinality(%(orgs)s::bigint[])], 'SYN-' || g, 'Famille ' || g,
                      g %% 10 <> 0, '', now()
               FROM generate_series(1, %(n)s) g""", {"orgs": orgs, "n": households})
        conn.execute(
            """INSERT INTO bookings_child (organisation_id, household_id, first_name, birth_date, school)
               SELECT h.organisation_id, h.id, 'Enfant ' || h.id, date '2015-01-01' + (h.id %% 2500)::int, ''
               FROM (SELECT id, organisation_id FROM bookings_household WHERE reference LIKE 'SYN-%%'
                     ORDER BY id LIMIT %(n)s) h""", {"n": children})
        conn.execute(
            """CREATE TEMP TABLE syn_day AS
               SELECT d.*, row_number() OVER (PARTITION BY d.organisation_id ORDER BY d.activity_id, d.date) AS rn,
                      count(*) OVER (PARTITION BY d.organisation_id) AS n
               FROM (SELECT s.organisation_id, s.activity_id, s.date, array_agg(s.id ORDER BY s.id) AS sessions,
                            (SELECT min(u.id) FROM bookings_unit u WHERE u.activity_id = s.activity_id) AS unit_id
                     FROM bookings_session s GROUP BY s.organisation_id, s.activity_id, s.date) d""")
        conn.execute(
            """INSERT INTO bookings_booking (organisation_id, household_id, child_id, session_id, activity_id, date,
                                             unit_id, status, booked_at, late, after_deadline, reason, channel,
                                             actor_ref)
               SELECT c.organisation_id, c.household_id, c.id,
                      d.sessions[1 + c.id %% cardinality(d.sessions)], d.activity_id, d.date, d.unit_id, 'booked',
                      timestamptz '2025-06-04 10:30:00+00' + (c.id %% 3600) * interval '1 second', false, false, '',
                      'portal', 'user:' || c.household_id
               FROM bookings_child c
               JOIN syn_day d ON d.organisation_id = c.organisation_id
                    AND ((d.rn + c.id) %% d.n) < %(k)s
               WHERE c.first_name LIKE 'Enfant %%'""", {"k": per_child})
        conn.commit()
        timings["bookings"] = time.perf_counter() - t
        t = time.perf_counter()
        per_org = {org: journal // len(orgs) for org in orgs}
        per_org[orgs[0]] += journal - sum(per_org.values())
        conn.execute("DELETE FROM journal_entry WHERE chain = ANY(%s)", [orgs])  # the demo's few entries
        conn.execute("DELETE FROM journal_head WHERE chain = ANY(%s)", [orgs])
        copy_journal(conn, per_org)
        timings["journal"] = time.perf_counter() - t
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 (constants)
                  for t in ("bookings_household", "bookings_child", "bookings_booking", "journal_entry")}
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    return {"counts": counts, "database_size": size, "timings": timings}


def _size(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]


CPU: dict[str, float] = {}


def run(args: list[str], url: str, label: str) -> tuple[float, str]:
    """Run a guichet command; returns its wall time, records its CPU time (user + system) in CPU."""
    env = {**os.environ, "DATABASE_URL": url, "GUICHET_INSECURE_DEV_KEY": "1", "LOG_LEVEL": "WARNING"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run([GUICHET, *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(done.stdout, done.stderr)
        raise SystemExit(f"{label} failed")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=45_000)
    parser.add_argument("--children", type=int, default=25_000)
    parser.add_argument("--per-child", type=int, default=120, help="days booked per child (one place a day)")
    parser.add_argument("--journal", type=int, default=2_000_000, help="journal entries")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--database", default="guichet_bench_backup", metavar="NAME",
                        help="the town's scratch database (dropped first); the restore goes to NAME_restore")
    parser.add_argument("--reuse-town", action="store_true",
                        help="keep the town built by a previous run (--database) and only run the drill")
    args = parser.parse_args()

    print("machine:", json.dumps(machine()))
    if args.reuse_town:
        source = f"{args.pg}/{args.database}"
        built = {"database_size": _size(source)}
        print(f"reusing the town in {args.database} ({built['database_size']})")
    else:
        source = fresh_pg(args.pg, args.database)
        t = time.perf_counter()
        migrate(source)
        print(f"schema migrated: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        built = populate(source, households=args.households, children=args.children, per_child=args.per_child,
                         journal=args.journal)
        print(f"town built in {time.perf_counter() - t:.1f} s: {json.dumps(built)}")

    with tempfile.TemporaryDirectory(prefix="guichet-drill-") as tmp:
        tmp = Path(tmp)
        key, archive, media = tmp / "backup.key", tmp / "town.gbak", tmp / "media"
        media.mkdir()
        (media / "justificatif.pdf").write_bytes(os.urandom(200_000))
        run(["backup", "keygen", str(key)], source, "keygen")
        print(f"load before the drill (uptime): {os.getloadavg()}")
        phases = {}
        phases["backup create"], out = run(["backup", "create", str(archive), "--key-file", str(key),
                                            "--media-root", str(media)], source, "backup create")
        print(out.split("journal checkpoint")[0].rstrip())
        print(f"  ({phases['backup create']:.1f} s)")
        phases["backup verify"], out = run(["backup", "verify", str(archive), "--key-file", str(key)], source,
                                           "backup verify")
        print(out.rstrip())
        target = fresh_pg(args.pg, f"{args.database}_restore")
        phases["restore + verification"], out = run(["backup", "restore", str(archive), "--key-file", str(key),
                                                     "--media-root", str(tmp / "restored-media")], target,
                                                    "restore + verification")
        print(out.rstrip())
        total = sum(phases.values())
        print("\nphases (wall clock; CPU of the guichet process and its pg_dump/pg_restore children):")
        for name, seconds in phases.items():
            print(f"  {name:<24} {seconds:7.1f} s   CPU {CPU.get(name, 0):6.1f} s")
        print(f"  {'total':<24} {total:7.1f} s   (goal: ≤ 300 s)  {'OK' if total <= 300 else 'OVER'}")
        print(f"archive: {archive.stat().st_size / 1e6:.1f} MB; database: {built['database_size']}")
    print(f"load after (uptime): {os.getloadavg()}")


if __name__ == "__main__":
    main()
