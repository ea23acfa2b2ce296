"""No overbooking and no fairness inversion under concurrency.

PostgreSQL: N threads (one connection each) race for the last places of one session through
``basket_submit``; exactly ``capacity`` children are booked, the counter equals the ledger, no
database error reaches a caller, and no basket received later is booked while an earlier one for
the same session was refused or waitlisted. A CONTROL runs a naive check-then-insert (read the
count, then write) on a scratch table without the CHECK constraint, with the same threads: it
overbooks, which shows the race is real and the guard is what prevents it.

SQLite: the same race on a FILE database (WAL, IMMEDIATE transactions), run in a subprocess that
has its own settings (the test database of pytest-django may be in memory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.concurrency import run_together

THREADS = 16
CAPACITY = 5
ROOT = Path(__file__).resolve().parents[2]


def race(world, *, mode: str, threads: int = THREADS) -> dict:
    """Every thread submits one basket for the same session at the same moment."""
    from guichet.bookings import services
    from guichet.bookings.models import Basket, Booking, SessionPart

    from .test_services import BEFORE, PARENT, item

    session = world.session(capacity=CAPACITY)
    families = [world.household() for _ in range(threads)]

    def work(n: int) -> None:
        household, (child,) = families[n]
        services.basket_submit(
            household=household, items=[item(child, session)], mode=mode, actor=PARENT, now=BEFORE,
            idempotency_key=f"race-{n}",
        )

    errors = run_together(work, threads)
    outcomes = [
        (b.pk, b.result["items"][0]["outcome"]) for b in Basket.objects.filter(items__isnull=False).order_by("pk")
    ]
    return {
        "errors": [repr(e) for e in errors],
        "booked_counters": sorted(SessionPart.objects.filter(session=session).values_list("booked", flat=True)),
        "active_bookings": Booking.objects.filter(session=session, status="booked").count(),
        "outcomes": outcomes,
    }


def check(result: dict, *, threads: int = THREADS, loser: str) -> None:
    assert result["errors"] == []
    assert result["active_bookings"] == CAPACITY
    assert result["booked_counters"] == [CAPACITY] * 3
    outcomes = result["outcomes"]
    assert len(outcomes) == threads
    assert [o for _pk, o in outcomes] == ["booked"] * CAPACITY + [loser] * (threads - CAPACITY), (
        "fairness inversion: a later basket was booked while an earlier one was not"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_race_for_the_last_places_partial():
    from .test_services import World

    check(race(World(), mode="partial"), loser="waitlisted")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_race_for_the_last_places_all_or_nothing():
    from .test_services import World

    check(race(World(), mode="all_or_nothing"), loser="refused")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_race_agents_and_parents_never_overbook():
    """Agent bookings (outside the basket queue) and baskets race: the conditional UPDATE alone
    keeps ``booked <= capacity`` and equal to the ledger."""
    from guichet.bookings import services
    from guichet.bookings.models import Booking, SessionPart

    from .test_services import AGENT, BEFORE, PARENT, World, item

    world = World()
    session = world.session(capacity=CAPACITY)
    families = [world.household() for _ in range(THREADS)]

    def work(n: int) -> None:
        household, (child,) = families[n]
        if n % 2:
            try:
                services.booking_create_by_agent(household=household, child=child, session=session,
                                                 unit="journee", actor=AGENT, now=BEFORE, reason="")
            except services.BookingError as e:
                assert e.code == "full"
        else:
            services.basket_submit(household=household, items=[item(child, session)], mode="partial",
                                   actor=PARENT, now=BEFORE, idempotency_key=f"mixed-{n}")

    errors = run_together(work, THREADS)
    assert errors == []
    assert Booking.objects.filter(session=session, status="booked").count() == CAPACITY
    assert list(SessionPart.objects.filter(session=session).values_list("booked", flat=True)) == [CAPACITY] * 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_idempotent_retries_race_to_one_basket():
    from guichet.bookings import services
    from guichet.bookings.models import Basket, Booking

    from .test_services import BEFORE, PARENT, World, item

    world = World()
    session = world.session(capacity=CAPACITY)
    household, (child,) = world.household()
    answers = []

    def work(_n: int) -> None:
        b = services.basket_submit(household=household, items=[item(child, session)], mode="partial",
                                   actor=PARENT, now=BEFORE, idempotency_key="same")
        answers.append((b.pk, b.result["items"][0]["outcome"]))

    errors = run_together(work, 8, timeout=60)
    assert errors == []
    assert len(set(answers)) == 1 and answers[0][1] == "booked"
    assert Basket.objects.count() == 1 and Booking.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_control_naive_check_then_insert_overbooks():
    """The same race without the guard: read the count, decide, insert. It overbooks."""
    with connection.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS scratch_naive_booking (id serial PRIMARY KEY, session int)")
        c.execute("TRUNCATE scratch_naive_booking")
    def naive(_n: int) -> None:
        from django.db import transaction

        with transaction.atomic(), connection.cursor() as c:
            c.execute("SELECT count(*) FROM scratch_naive_booking WHERE session = 1")
            (taken,) = c.fetchone()
            time.sleep(0.05)  # the time a real request spends between its check and its write
            if taken < CAPACITY:
                c.execute("INSERT INTO scratch_naive_booking (session) VALUES (1)")

    try:
        errors = run_together(naive, THREADS, timeout=60)
        with connection.cursor() as c:
            c.execute("SELECT count(*) FROM scratch_naive_booking")
            (count,) = c.fetchone()
    finally:
        with connection.cursor() as c:
            c.execute("DROP TABLE IF EXISTS scratch_naive_booking")
    assert errors == []
    assert count > CAPACITY, "the naive control should overbook; the race was not reproduced"


# --- SQLite on a file ----------------------------------------------------------------------------------


def test_sqlite_file_database_race_never_overbooks(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
        "GUICHET_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "guichet.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "GUICHET_TASKS_BACKEND": "django_tasks.backends.dummy.DummyBackend",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "test-only-not-secret"),
    }
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "worker"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["vendor"] == "sqlite"
    assert result["file"].endswith("race.sqlite3")
    check(result, threads=12, loser="waitlisted")


def _sqlite_worker() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests.bookings.test_concurrency import race
    from tests.bookings.test_services import World

    result = race(World(), mode="partial", threads=12)
    result["vendor"] = connection.vendor
    result["file"] = str(connection.settings_dict["NAME"])
    print(json.dumps(result))


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    _sqlite_worker()
