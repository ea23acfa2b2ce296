"""Water: the annual regularisation of 20,000 meters, and a pain.008 file of 20,000 debits.

    .venv/bin/python bench/water_regularisation.py             # 20,000 meters (the issue's targets)
    .venv/bin/python bench/water_regularisation.py --meters 2000 --keep

Creates a scratch PostgreSQL database (``guichet_bench_water``, dropped first and at the end
unless ``--keep``), generates (not measured) 20,000 monthly payers with a meter, a contract, a
mandate, a 2024 schedule of 10 instalments whose fate mirrors Saint-Nazaire (2 collected, 4 not
collected during the outage, 4 collected, 1 in 50 returned by the bank) and a November reading
(1 meter in 100 not read: estimated). Then it measures, through the real services:

1. ``regularisation_run`` for 2024: 20,000 invoices, balances, credits, and the 2025 schedules
   (200,000 instalments). Target: <= 30 s.
2. ``debit_run_create`` for January 2025: 20,000 debits in one pain.008 file, generated with
   sepaxml and validated against the XSD, plus the database writes. Target: <= 10 s.

and checks the invariants afterwards (balance = total - collected on every invoice, control sum
= sum of the debited instalments, no instalment in two files). Prints the machine and the load.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import resource
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT / "src"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench.rush import LoadSampler, create_database, drop_database, machine, verdict  # noqa: E402

DB = "guichet_bench_water"
TARGET_REGULARISATION = 30.0
TARGET_DEBIT_FILE = 10.0


class CpuClock:
    """CPU seconds used by this process and by the PostgreSQL backend serving its connection
    (read from /proc: same machine). On a shared, overloaded machine the wall time measures the
    queue for the CPU; this sum is what the work itself costs (the PostgreSQL WAL writer and
    checkpointer are not counted)."""

    def __init__(self):
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            self.backend = cur.fetchone()[0]
        self.tick = os.sysconf("SC_CLK_TCK")

    def _backend(self) -> float:
        try:
            rest = Path(f"/proc/{self.backend}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(rest[11]) + int(rest[12])) / self.tick

    def read(self) -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime, self._backend()

    def __enter__(self):
        self.start = self.read()
        return self

    def __exit__(self, *exc):
        end = self.read()
        self.python, self.postgres = end[0] - self.start[0], end[1] - self.start[1]

    def text(self) -> str:
        return (f"CPU: Python {self.python:.1f} s + PostgreSQL backend {self.postgres:.1f} s = "
                f"{self.python + self.postgres:.1f} s")


def setup(admin_url: str) -> str:
    url = admin_url.rsplit("/", 1)[0] + f"/{DB}"
    create_database(admin_url, DB)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("GUICHET_FIELD_KEY", base64.b64encode(os.urandom(32)).decode())  # throw-away field key
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guichet.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def generate(n: int) -> object:
    """The scenario, written in bulk (not measured)."""
    from django.db import transaction
    from schwifty import IBAN

    from guichet.catalog.models import Organisation, Portal
    from guichet.common.actor import Actor
    from guichet.water import bulk, services
    from guichet.water import models as m
    from guichet.water.demo import CREDITOR_IBAN, CREDITOR_ID, TARIFF_2023

    actor = Actor.cli()
    now = dt.datetime(2023, 11, 20, 9, tzinfo=dt.UTC)
    portal = Portal.objects.create(slug="bench", name="Bench")
    org = Organisation.objects.create(portal=portal, slug="eau", name="Bench water", kind="agglomeration")
    services.creditor_set(organisation=org, name="Bench Eau", creditor_id=CREDITOR_ID, iban=CREDITOR_IBAN,
                          actor=actor, now=now)
    services.tariff_set(organisation=org, valid_from=dt.date(2023, 1, 1), definition=TARIFF_2023, actor=actor, now=now)
    take_over, read_on = dt.date(2023, 11, 20), dt.date(2024, 11, 18)
    o = org.pk
    with transaction.atomic():
        customers = bulk.reserve_ids(m.Customer, n)
        points = bulk.reserve_ids(m.DeliveryPoint, n)
        meters = bulk.reserve_ids(m.Meter, n)
        contracts = bulk.reserve_ids(m.Contract, n)
        schedules = bulk.reserve_ids(m.Schedule, n)
        bulk.insert_rows(m.Customer, [
            {"id": customers[i], "organisation_id": o, "reference": f"C{i:06d}", "name": f"Client {i}",
             "address": "1 rue de la Paix", "billing": "monthly",
             "credit_preference": "carry_over" if i % 3 else "refund", "created_at": now} for i in range(n)])
        bulk.insert_rows(m.DeliveryPoint, [{"id": points[i], "organisation_id": o, "reference": f"P{i:06d}",
                                            "address": "x", "sanitation": i % 10 != 0} for i in range(n)])
        bulk.insert_rows(m.Meter, [{"id": meters[i], "organisation_id": o, "delivery_point_id": points[i],
                                    "serial": f"M{i:06d}", "diameter": 15 if i % 20 else 20} for i in range(n)])
        bulk.insert_rows(m.Contract, [
            {"id": contracts[i], "organisation_id": o, "customer_id": customers[i], "delivery_point_id": points[i],
             "meter_id": meters[i], "start": take_over, "start_index": 1000 + i % 500, "end": None, "end_index": None}
            for i in range(n)])
        readings = [{"organisation_id": o, "meter_id": meters[i], "date": take_over, "index": 1000 + i % 500,
                     "kind": "actual", "recorded_at": now} for i in range(n)]
        readings += [{"organisation_id": o, "meter_id": meters[i], "date": dt.date(2024, 5, 20),
                      "index": 1000 + i % 500 + 40 + i % 30, "kind": "actual", "recorded_at": now} for i in range(n)]
        readings += [{"organisation_id": o, "meter_id": meters[i], "date": read_on,
                      "index": 1000 + i % 500 + 60 + i % 140, "kind": "actual", "recorded_at": now}
                     for i in range(n) if i % 100 != 7]
        bulk.insert_rows(m.Reading, readings)
        bulk.insert_rows(m.Mandate, [
            {"organisation_id": o, "customer_id": customers[i], "reference": f"RUM-{i:06d}",
             "signed_on": dt.date(2019, 3, 1), "iban": IBAN.generate("FR", bank_code="30004", account_code=f"{i:011d}").compact,
             "bic": "", "one_off": False, "status": "active", "first_debit_on": dt.date(2024, 1, 10),
             "last_debit_on": None, "revoked_on": None} for i in range(n)])
        bases = [30000 + (i % 400) * 100 for i in range(n)]
        bulk.insert_rows(m.Schedule, [
            {"id": schedules[i], "organisation_id": o, "contract_id": contracts[i], "year": 2024, "basis": bases[i],
             "credit_applied": 0, "status": "open", "created_at": now} for i in range(n)])
        instalments = []
        for i in range(n):
            for k, amount in enumerate(services.rules.schedule_amounts(bases[i], 10), start=1):
                if k in (3, 4, 5, 6):
                    state = "not_collected"
                elif k == 8 and i % 50 == 0:
                    state = "rejected"
                else:
                    state = "collected"
                instalments.append({"organisation_id": o, "schedule_id": schedules[i], "invoice_id": None,
                                    "customer_id": customers[i], "number": k, "due_date": dt.date(2024, k, 10),
                                    "amount": amount, "state": state, "note": ""})
        bulk.insert_rows(m.Instalment, instalments)
    # A production database is analysed by autovacuum; a freshly bulk-loaded one is not, and the
    # planner would then join 200,000 instalments as if the tables were empty.
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return org


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    print("machine:", machine(args.admin_url))
    print("uptime:", os.popen("uptime").read().strip())
    setup(args.admin_url)
    try:
        t0 = time.perf_counter()
        org = generate(args.meters)
        print(f"scenario: {args.meters} meters generated in {time.perf_counter() - t0:.1f} s (not measured)")
        results = measure(org, args.meters)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.admin_url, DB)
    return 0 if results else 1


def measure(org, n: int) -> bool:
    from django.db.models import Count, F, Sum

    from guichet.common.actor import Actor
    from guichet.common.money import format_euros
    from guichet.water import models as m
    from guichet.water import sepa, services

    actor = Actor.cli()
    with LoadSampler() as load, CpuClock() as cpu:
        t0 = time.perf_counter()
        report = services.regularisation_run(organisation=org, year=2024, readings_until=dt.date(2024, 11, 30),
                                             issued_on=dt.date(2024, 11, 25), actor=actor,
                                             now=dt.datetime(2024, 11, 25, 9, tzinfo=dt.UTC))
        reg_s = time.perf_counter() - t0
    print(f"\n1. regularisation of {n} schedules + next schedules: {reg_s:.2f} s wall ({load.text()}); {cpu.text()}")
    for key, value in report.as_summary().items():
        if key != "anomalies":
            print(f"   {key:<20} {format_euros(value) if key in ('billed', 'collected', 'due', 'credit_carried', 'credit_refunded', 'next_total', 'not_collected', 'rejected') else value}")
    print(f"   anomalies            {len(report.anomalies)}")
    bad = m.Invoice.objects.filter(organisation=org).exclude(balance=F("total") - F("deducted")).count()
    collected = m.Instalment.objects.filter(organisation=org, schedule__year=2024, state="collected").aggregate(
        s=Sum("amount"))["s"]
    ok_reg = (report.invoices == n and bad == 0 and report.collected == collected
              and m.Instalment.objects.filter(schedule__year=2025).count() == report.next_instalments)
    print(f"   invariants: {n} invoices, balance = total - collected on all, deducted = collected instalments: "
          f"{verdict(ok_reg)}")
    print(f"   target <= {TARGET_REGULARISATION:.0f} s: wall {verdict(reg_s <= TARGET_REGULARISATION)}, "
          f"CPU {verdict(cpu.python + cpu.postgres <= TARGET_REGULARISATION)}")

    with LoadSampler() as load, CpuClock() as cpu2:
        t0 = time.perf_counter()
        debit = services.debit_run_create(organisation=org, collection_date=dt.date(2025, 1, 10),
                                          due_from=dt.date(2025, 1, 1), due_until=dt.date(2025, 1, 31),
                                          idempotency_key="bench-2025-01", actor=actor,
                                          now=dt.datetime(2025, 1, 3, 9, tzinfo=dt.UTC))
        debit_s = time.perf_counter() - t0
    xml = bytes(debit.run.xml)
    t1 = time.perf_counter()
    sepa.validate_pain008(xml)
    validate_s = time.perf_counter() - t1
    count, total = sepa.control_sum(xml)
    lines = m.DebitLine.objects.filter(run=debit.run).aggregate(n=Count("id"), s=Sum("amount"))
    twice = m.DebitLine.objects.values("instalment_id").annotate(c=Count("id")).filter(c__gt=1).count()
    print(f"\n2. debit run, January 2025: {debit.count} debits, {len(xml) / 1e6:.1f} MB, {debit_s:.2f} s "
          f"wall including the XSD validation ({load.text()}); {cpu2.text()}; the validation alone: "
          f"{validate_s:.2f} s")
    print(f"   by sequence type: {debit.by_sequence}; anomalies: {len(debit.anomalies)}")
    ok_debit = count == lines["n"] == debit.count and total == lines["s"] == debit.control_sum and twice == 0
    print(f"   invariants: control sum {format_euros(total)} = sum of the {count} instalments in the file, "
          f"none in two files: {verdict(ok_debit)}")
    print(f"   target {n} debits <= {TARGET_DEBIT_FILE:.0f} s: wall {verdict(debit_s <= TARGET_DEBIT_FILE)}, "
          f"CPU {verdict(cpu2.python + cpu2.postgres <= TARGET_DEBIT_FILE)}")
    return ok_reg and ok_debit


if __name__ == "__main__":
    sys.exit(main())
