"""Two direct-debit runs started at the same moment (a double click, two agents, a retried job
with a new key) never present an instalment twice: the candidate rows are locked and
re-checked, and ``DebitLine.instalment`` is unique. The control shows the race without the
guard: a naive read-then-write run collects the same instalments twice."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction
from django.db.models import Count

from guichet.water import services as s
from guichet.water.models import DebitLine, Instalment
from tests.concurrency import run_together

from .conftest import ACTOR, D, at, monthly_payer

PAYERS = 12
THREADS = 4


def _payers(org):
    for i in range(PAYERS):
        monthly_payer(org, f"C-{i}")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_debit_runs_collect_each_instalment_once(org):
    _payers(org)

    def work(n):
        s.debit_run_create(organisation=org, collection_date=D(2024, 1, 10), due_from=D(2024, 1, 1),
                           due_until=D(2024, 1, 31), idempotency_key=f"run-{n}", actor=ACTOR, now=at(D(2024, 1, 3)))

    errors = run_together(work, THREADS)
    assert all(isinstance(e, s.WaterError) and "no instalment to collect" in e.message for e in errors), errors
    assert len(errors) == THREADS - 1  # one run took them all; the others found nothing left
    lines = DebitLine.objects.filter(organisation=org)
    assert lines.count() == PAYERS
    assert not lines.values("instalment_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Instalment.objects.filter(organisation=org, state="collected").count() == PAYERS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_request_retried_at_once_makes_one_run(org):
    _payers(org)
    runs = []

    def work(n):
        report = s.debit_run_create(organisation=org, collection_date=D(2024, 1, 10), due_from=D(2024, 1, 1),
                                    due_until=D(2024, 1, 31), idempotency_key="same", actor=ACTOR,
                                    now=at(D(2024, 1, 3)))
        runs.append((report.run.pk, report.created))

    assert run_together(work, THREADS) == []
    assert len({pk for pk, _ in runs}) == 1 and sum(created for _, created in runs) == 1
    assert DebitLine.objects.filter(organisation=org).count() == PAYERS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_control_a_naive_run_without_the_guard_collects_twice(org):
    _payers(org)
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE water_naive_line (instalment_id bigint NOT NULL)")
    try:
        def naive(n):
            with transaction.atomic(), connection.cursor() as cur:
                ids = list(Instalment.objects.filter(organisation=org, state="planned", due_date__lte=D(2024, 1, 31))
                           .values_list("id", flat=True))  # no lock
                time.sleep(0.3)  # the time it takes to build the file
                for i in ids:
                    cur.execute("INSERT INTO water_naive_line (instalment_id) VALUES (%s)", [i])
                Instalment.objects.filter(pk__in=ids).update(state="collected")

        assert run_together(naive, THREADS) == []
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) - count(DISTINCT instalment_id) FROM water_naive_line")
            twice = cur.fetchone()[0]
        assert twice > 0, "the naive run should have presented some instalments twice"
    finally:
        with connection.cursor() as cur:
            cur.execute("DROP TABLE water_naive_line")
