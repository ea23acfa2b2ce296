"""The counter's family search at 20,000 households: time of one search (count + first page).

    .venv/bin/python bench/agent_search.py                 # PostgreSQL, scratch database
    .venv/bin/python bench/agent_search.py --sqlite        # SQLite, scratch file
    .venv/bin/python bench/agent_search.py --households 50000

Creates a scratch database (PostgreSQL ``guichet_portalui_search`` at ``--pg``, dropped first, or
a SQLite file in a temporary directory), migrates it, writes ``--households`` households of one
organisation with 1-3 children each and one guardian account each (bulk), then times
``guichet.bookings.search.households_matching`` as the agents' page uses it (the count for the
pager and the first page of 20) for a few kinds of query: a file number, a family name without its
accents, a child's first name, an e-mail fragment, and a word found nowhere (the worst case: every
row is read). Prints the median and the maximum of ``--repeat`` runs per query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

NAMES = [
    "Hélène",
    "Dupré",
    "Lefèvre",
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lebœuf",
    "Garçon",
    "Noël",
]
FIRST = [
    "Éloïse",
    "Léa",
    "Noé",
    "Chloé",
    "Zoé",
    "Jules",
    "Gabriel",
    "Inès",
    "Anaïs",
    "Raphaël",
    "Louise",
    "Côme",
]
QUERIES = {
    "file number": "F01234",
    "family name, no accents": "lefevre-",
    "child's first name": "eloise",
    "e-mail fragment": "parent.1234@",
    "found nowhere": "zzqx",
}


def setup_database(args) -> None:
    if args.sqlite:
        directory = tempfile.mkdtemp(prefix="guichet-search-")
        os.environ["DATABASE_URL"] = f"sqlite:///{directory}/bench.sqlite3"
    else:
        name = args.database
        subprocess.run(
            ["dropdb", "-h", args.host, "-U", "postgres", "--if-exists", name], check=True
        )
        subprocess.run(["createdb", "-h", args.host, "-U", "postgres", name], check=True)
        os.environ["DATABASE_URL"] = f"postgres://postgres@{args.host}:5432/{name}"
    os.environ.setdefault("GUICHET_INSECURE_DEV_KEY", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guichet.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def populate(n: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from guichet.bookings.models import Child, Guardian, Household
    from guichet.catalog.models import Organisation, Portal

    portal = Portal.objects.create(slug="bench", name="Bench")
    org = Organisation.objects.create(portal=portal, slug="bench", name="Bench")
    created = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    households = Household.objects.bulk_create(
        [
            Household(
                organisation=org,
                reference=f"F{i:05d}",
                created_at=created,
                email=f"foyer{i}@example.org",
                display_name=f"Famille {NAMES[i % len(NAMES)]}-{NAMES[(i // 7) % len(NAMES)]} {i}",
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    Child.objects.bulk_create(
        [
            Child(
                organisation=org,
                household=h,
                first_name=FIRST[(i + k) % len(FIRST)],
                birth_date=dt.date(2016, 1, 1),
            )
            for i, h in enumerate(households)
            for k in range(1 + i % 3)
        ],
        batch_size=5000,
    )
    password = make_password(None)
    users = get_user_model().objects.bulk_create(
        [
            get_user_model()(
                username=f"parent{i}", email=f"Parent.{i}@Example.org", password=password
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    Guardian.objects.bulk_create(
        [
            Guardian(organisation=org, household=h, user=u)
            for h, u in zip(households, users, strict=True)
        ],
        batch_size=5000,
    )


def time_queries(repeat: int) -> dict:
    from django.core.paginator import Paginator

    from guichet.bookings import search
    from guichet.catalog.models import Organisation

    orgs = list(Organisation.objects.all())
    out = {}
    for label, query in QUERIES.items():
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            page = Paginator(
                search.households_matching(organisations=orgs, query=query).prefetch_related(
                    "children"
                ),
                search.PAGE_SIZE,
            ).get_page(1)
            found = page.paginator.count
            list(page.object_list)
            runs.append(time.perf_counter() - start)
        out[label] = (query, found, statistics.median(runs), max(runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--database", default="guichet_portalui_search")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    setup_database(args)
    from django.db import connection

    start = time.perf_counter()
    populate(args.households)
    print(
        f"{connection.vendor}: {args.households:,} households written in {time.perf_counter() - start:.1f} s; "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if os.environ.get("EXPLAIN"):
        from guichet.bookings import search
        from guichet.catalog.models import Organisation

        qs = search.households_matching(
            organisations=list(Organisation.objects.all()), query=os.environ["EXPLAIN"]
        )
        print(qs.explain(analyze=True) if connection.vendor == "postgresql" else qs.explain())
    for label, (query, found, median, worst) in time_queries(args.repeat).items():
        print(
            f"  {label:<26} {query!r:<16} {found:>6} found   median {median * 1000:6.1f} ms   max {worst * 1000:6.1f} ms"
        )
    if not args.sqlite and not args.keep:
        connection.close()
        subprocess.run(
            ["dropdb", "-h", args.host, "-U", "postgres", "--if-exists", args.database], check=True
        )


if __name__ == "__main__":
    main()
