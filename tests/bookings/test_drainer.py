"""One basket drainer for the whole deployment (PostgreSQL, bookings/intake.py).

``guichet bookings drainer`` answers the queue for every server process; a server process
whose request waits hears of the answer (LISTEN/NOTIFY) without draining itself; when the
drainer stops, a server process takes over within a few seconds. On SQLite the command says
there is nothing to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from guichet.bookings import intake
from guichet.bookings.models import Basket, Booking
from tests.bookings.test_api_bookings import parent, post_basket, world  # noqa: F401 - fixtures
from tests.bookings.test_rush_ci import _database_url
from tests.bookings.test_services import BEFORE

ROOT = Path(__file__).resolve().parents[2]


def test_the_drainer_command_on_sqlite_says_there_is_nothing_to_run(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: on PostgreSQL the command runs until stopped")
    with pytest.raises(CommandError, match="needs PostgreSQL") as caught:
        call_command("bookings", "drainer")
    assert caught.value.returncode == 2


def _start_drainer() -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": _database_url(), "SECRET_KEY": settings.SECRET_KEY, "DEBUG": "0",
           "GUICHET_INSECURE_DEV_KEY": "1", "PYTHONPATH": str(ROOT / "src"), "LOG_LEVEL": "INFO"}
    proc = subprocess.Popen([sys.executable, "-m", "guichet.cli", "bookings", "drainer"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "answering the queue" in proc.stdout.readline()  # started (it printed its first line)
    return proc


def _lock_holder_pids() -> set[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s "
                       "AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", [intake.LEADER_LOCK[0], intake.LEADER_LOCK[1]])
        return {row[0] for row in cursor.fetchall()}


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_drainer_process_answers_and_a_server_process_takes_over_when_it_stops(world, parent, client,  # noqa: F811
                                                                                 settings, monkeypatch):
    from guichet.bookings import services

    drained_here = []
    real = services.basket_drain_round

    def spy(organisation_id):
        drained_here.append(organisation_id)
        return real(organisation_id)

    monkeypatch.setattr(services, "basket_drain_round", spy)
    settings.GUICHET_BOOKING_ANSWER_WAIT = 10
    _, kids, auth = parent
    session = world.session()
    drainer = _start_drainer()
    try:
        # It holds the drainer's lock (this process has no drainer thread yet: no basket so far).
        assert _wait_for(lambda: bool(_lock_holder_pids()))
        with time_machine.travel(BEFORE, tick=True):
            # This process waits for the answer; the drainer process gives it, NOTIFY tells it.
            r = post_basket(client, auth, [{"child": kids[0].pk, "session": session.pk, "unit": "journee"}],
                            key="by-the-drainer")
        assert r.status_code == 200 and r.json()["items"][0]["outcome"] == "booked"
        assert drained_here == []  # answered by the drainer process, not here
        assert intake.drainer().leader is False
    finally:
        drainer.terminate()
        drainer.wait(10)
    # The drainer is gone: its lock with it. This process takes over and answers.
    with time_machine.travel(BEFORE, tick=True):
        r = post_basket(client, auth, [{"child": kids[1].pk, "session": session.pk, "unit": "journee"}],
                        key="after-the-drainer")
    assert r.status_code == 200 and r.json()["items"][0]["outcome"] == "booked"
    assert drained_here and intake.drainer().leader is True
    assert Booking.objects.filter(status="booked").count() == 2
    assert Basket.objects.filter(status="done").count() == 2



@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_organisations_rush_does_not_hold_up_another(monkeypatch):
    """The one drainer takes a round of each organisation's line in turn: a town whose line
    never empties does not keep another town's families waiting."""
    from guichet.bookings import services
    from tests.bookings.test_services_batch import OPENS, PARENT, Town

    monkeypatch.setattr(services, "DRAIN_BATCH", 2)
    big, small = Town("busy", households=6), Town("quiet", households=1)

    def receive(town, i):
        child, session = town.children[i][0], town.sessions[0]
        return services.basket_receive(
            household=town.households[i], items=[{"child": child.pk, "session": session.pk, "unit": "matin"}],
            mode=Basket.Mode.PARTIAL, actor=PARENT, now=OPENS, idempotency_key=f"k{i}", channel="api")

    for i in range(6):
        receive(big, i)
    lone = receive(small, 0)
    worker = intake._PgIntake()  # noqa: SLF001
    worker.conn = worker._connect()  # noqa: SLF001
    try:
        worker.leader = True
        worker.orgs = {big.org.pk, small.org.pk}
        worker._drain_each()  # noqa: SLF001 - one turn
        lone.refresh_from_db()
        assert lone.status == Basket.Status.DONE  # answered in the first turn
        assert Basket.objects.filter(organisation=big.org, status=Basket.Status.RECEIVED).count() == 4
        assert big.org.pk in worker.orgs  # the busy town's line comes back for another turn
    finally:
        worker.conn.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_server_process_that_drains_hands_over_to_the_drainer_service(world, parent, client,  # noqa: F811
                                                                     settings, monkeypatch):
    from guichet.bookings import services

    settings.GUICHET_BOOKING_ANSWER_WAIT = 10
    _, kids, auth = parent
    session = world.session()
    with time_machine.travel(BEFORE, tick=True):
        r = post_basket(client, auth, [{"child": kids[0].pk, "session": session.pk, "unit": "journee"}],
                        key="here-first")
    assert r.status_code == 200 and intake.drainer().leader is True  # no service: this process drains
    drained_here = []
    real = services.basket_drain_round

    def spy(organisation_id):
        answered = real(organisation_id)
        drained_here.extend(answered)  # baskets this process answered (an empty look answers none)
        return answered

    monkeypatch.setattr(services, "basket_drain_round", spy)
    drainer = _start_drainer()
    try:
        assert _wait_for(lambda: intake.drainer().leader is False, timeout=10)  # stepped down
        with time_machine.travel(BEFORE, tick=True):
            r = post_basket(client, auth, [{"child": kids[1].pk, "session": session.pk, "unit": "journee"}],
                            key="by-the-service")
        assert r.status_code == 200 and r.json()["items"][0]["outcome"] == "booked"
        assert drained_here == []  # the service answered it
    finally:
        drainer.terminate()
        drainer.wait(10)


def test_an_answer_heard_before_the_request_waits_is_not_missed():
    """Rounds answer in receipt order: once a round answered basket 10, a request that only
    now starts to wait for basket 7 reads its answer at once instead of sleeping its whole wait."""
    from types import SimpleNamespace

    org = 987654
    intake._Pace.saw(org, None)  # noqa: SLF001 - the line was empty
    waiting = SimpleNamespace(organisation_id=org, pk=7)
    assert not intake._Pace.answered(waiting)  # noqa: SLF001
    intake._Pace.saw(org, 11, 0.05)  # noqa: SLF001 - a round answered up to 10; 11 is the head
    assert intake._Pace.answered(waiting)  # noqa: SLF001
    assert not intake._Pace.answered(SimpleNamespace(organisation_id=org, pk=11))  # noqa: SLF001
    intake._Pace.saw(org, None, answered_upto=15)  # noqa: SLF001 - heard from another process
    assert intake._Pace.answered(SimpleNamespace(organisation_id=org, pk=15))  # noqa: SLF001


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_line_whose_round_fails_waits_while_the_other_lines_go_on(monkeypatch, caplog):
    """A basket the code cannot answer (a defect) pauses its organisation's line, logged; the
    other towns' families are still answered."""
    from guichet.bookings import services
    from tests.bookings.test_services_batch import OPENS, PARENT, Town

    broken, fine = Town("broken", households=1), Town("fine", households=1)
    baskets = {}
    for town in (broken, fine):
        child, session = town.children[0][0], town.sessions[0]
        baskets[town.org.pk] = services.basket_receive(
            household=town.households[0], items=[{"child": child.pk, "session": session.pk, "unit": "matin"}],
            mode=Basket.Mode.PARTIAL, actor=PARENT, now=OPENS, idempotency_key="k", channel="api")
    real = services.basket_drain_round

    def defect(organisation_id):
        if organisation_id == broken.org.pk:
            raise KeyError("a basket this code cannot answer")
        return real(organisation_id)

    monkeypatch.setattr(services, "basket_drain_round", defect)
    worker = intake._PgIntake()  # noqa: SLF001
    worker.conn = worker._connect()  # noqa: SLF001
    try:
        worker.leader = True
        worker.orgs = {broken.org.pk, fine.org.pk}
        worker._drain_each()  # noqa: SLF001
        assert Basket.objects.get(pk=baskets[fine.org.pk].pk).status == Basket.Status.DONE
        assert Basket.objects.get(pk=baskets[broken.org.pk].pk).status == Basket.Status.RECEIVED  # kept in line
        assert broken.org.pk in worker.paused and broken.org.pk in worker.orgs
        assert "a round of organisation" in caplog.text
        calls = []
        monkeypatch.setattr(services, "basket_drain_round", lambda organisation_id: calls.append(organisation_id) or [])
        worker._drain_each()  # noqa: SLF001 - within the pause: the broken line is not tried again
        assert broken.org.pk not in calls
    finally:
        worker.conn.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_basket_answered_by_a_paper_form_wakes_its_waiting_family_at_once():
    """A counter's basket (``basket_submit``, e.g. a paper form typed in after an outage) answers
    the line up to itself in its own process; a family waiting in a web process for a basket of
    that line hears of it at once, not after its whole wait."""
    import threading

    import psycopg

    from guichet.bookings import services
    from tests.bookings.test_services_batch import OPENS, PARENT, Town

    town = Town("paper", households=2)

    def items(i):
        return [{"child": town.children[i][0].pk, "session": town.sessions[0].pk, "unit": "matin"}]

    # Another drainer holds the lead but does nothing: only the paper form answers.
    with psycopg.connect(_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", intake.LEADER_LOCK)
        online = services.basket_receive(household=town.households[0], items=items(0), mode=Basket.Mode.PARTIAL,
                                         actor=PARENT, now=OPENS, idempotency_key="online", channel="api")
        heard = {}

        def family():
            started = time.monotonic()
            heard["outcome"] = intake.answer(online, wait=10)
            heard["seconds"] = time.monotonic() - started

        waiter = threading.Thread(target=family)
        waiter.start()
        assert _wait_for(lambda: intake.drainer().conn is not None and online.pk in intake.drainer().waiters)
        paper = services.basket_submit(household=town.households[1], items=items(1), mode=Basket.Mode.PARTIAL,
                                       actor=PARENT, now=OPENS, idempotency_key="paper", channel="counter")
        waiter.join(15)
    assert paper.status == Basket.Status.DONE
    assert heard["outcome"].state == "done" and heard["outcome"].basket.result["items"][0]["outcome"] == "booked"
    assert heard["seconds"] < 3  # woken by the round's NOTIFY, not by the end of its 10 s wait


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_another_databases_drainer_service_does_not_stop_this_one_from_draining():
    """Two deployments on one PostgreSQL server (two towns, or a staging copy): the drainer
    service of one must not make the other's web processes step down, or nobody would answer
    the other's families."""
    import psycopg

    worker = intake._PgIntake()  # noqa: SLF001
    worker.conn = worker._connect()  # noqa: SLF001
    url = _database_url()
    elsewhere = url.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(elsewhere, autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s, %s)", intake.SERVICE_LOCK)
            assert worker._service_runs() is False  # noqa: SLF001
            assert worker._try_lead() is True  # noqa: SLF001
        with psycopg.connect(url, autocommit=True) as here:  # control: this database's service
            here.execute("SELECT pg_advisory_lock(%s, %s)", intake.SERVICE_LOCK)
            assert worker._service_runs() is True  # noqa: SLF001
    finally:
        worker.conn.close()
