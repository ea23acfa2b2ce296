"""Water services beyond the Saint-Nazaire case: readings import (all or nothing, line-numbered
errors), estimates corrected at the next actual reading, credits carried over or refunded,
periodic invoices, instalment plans, move-in/move-out, tariffs, and the property that the
regularisation is the bill minus what was actually collected, whatever happened to each
instalment."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guichet.water import services as s
from guichet.water.models import DebitLine, Instalment, Invoice, Reading, Schedule

from .conftest import ACTOR, D, at, debit_month, monthly_payer

# --- readings import -----------------------------------------------------------------------------


def test_import_is_all_or_nothing_with_every_wrong_line_named(org):
    monthly_payer(org, "C-1")
    monthly_payer(org, "C-2")
    text = ("meter;date;index;kind\n"
            "M-C-1;2024-11-18;1322;actual\n"
            "M-C-9;2024-11-18;10;actual\n"
            "M-C-2;31/02/2024;10;actual\n"
            "M-C-2;2024-11-18;1x;actual\n"
            "M-C-2;2024-11-18;1300;maybe\n"
            "M-C-2;2024-11-18;1100;actual\n"
            "M-C-1;2024-11-18;1323;actual\n"
            "M-C-2\n")
    with pytest.raises(s.ImportFailed) as e:
        s.readings_import(organisation=org, text=text, actor=ACTOR, now=at(D(2024, 11, 19)))
    assert e.value.errors == [
        "line 3: unknown meter 'M-C-9'",
        "line 4: '31/02/2024' is not a date (2024-11-15 or 15/11/2024)",
        "line 5: index '1x' is not a whole number of m³",
        "line 6: kind 'maybe' is not actual or estimated",
        "line 7: index 1100 is below the actual reading of 2023-11-20 (1204 m³)",
        "line 8: meter M-C-1 already has a reading on 2024-11-18",
        "line 9: 4 columns expected, 1 found",
    ]
    assert Reading.objects.filter(organisation=org, date=D(2024, 11, 18)).count() == 0


def test_import_header_and_empty_files_are_named(org):
    with pytest.raises(s.ImportFailed, match="line 1: the header must be"):
        s.readings_import(organisation=org, text="compteur,date\n", actor=ACTOR, now=at(D(2024, 1, 1)))
    with pytest.raises(s.ImportFailed, match="empty"):
        s.readings_import(organisation=org, text="", actor=ACTOR, now=at(D(2024, 1, 1)))


def test_import_reports_volume_and_kinds(org):
    monthly_payer(org, "C-1")
    monthly_payer(org, "C-2", index=500)
    report = s.readings_import(organisation=org, text="meter,date,index,kind\nM-C-1,18/11/2024,1322,réel\n"
                               "M-C-2,2024-11-18,560,estimé\n", actor=ACTOR, now=at(D(2024, 11, 19)))
    assert (report.imported, report.actual, report.estimated, report.consumption) == (2, 1, 1, 118 + 60)


# --- regularisation variants ------------------------------------------------------------------------


def _regularise(org, year=2024):
    return s.regularisation_run(organisation=org, year=year, readings_until=D(year, 11, 30),
                                issued_on=D(year, 11, 25), actor=ACTOR, now=at(D(year, 11, 25)))


def test_missing_reading_is_estimated_and_corrected_at_the_next_actual(org):
    contract = monthly_payer(org, basis=30000)
    s.reading_record(meter=contract.meter, date=D(2024, 5, 20), index=1304, actor=ACTOR, now=at(D(2024, 5, 20)))
    report = _regularise(org)
    assert report.estimated_readings == 1
    est = Reading.objects.get(meter=contract.meter, kind="estimated")
    # 100 m³ in 182 days, carried to 30 November: 194 days more -> 1304 + 106.
    assert (est.date, est.index) == (D(2024, 11, 30), 1304 + round(100 * 194 / 182))
    # 2025: the actual reading is lower than the estimate; the next bill credits the difference.
    s.reading_record(meter=contract.meter, date=D(2025, 11, 20), index=1400, actor=ACTOR, now=at(D(2025, 11, 20)))
    _regularise(org, 2025)
    inv = Invoice.objects.get(schedule__contract=contract, schedule__year=2025)
    assert (inv.start_index, inv.end_index) == (est.index, 1400)
    assert any(ln["kind"] == "consumption" and ln["amount"] < 0 for ln in inv.lines)


def test_a_meter_with_no_reading_and_no_history_is_an_anomaly_left_open(org):
    monthly_payer(org, "C-1")
    ok = monthly_payer(org, "C-2")
    s.reading_record(meter=ok.meter, date=D(2024, 11, 18), index=1300, actor=ACTOR, now=at(D(2024, 11, 19)))
    report = _regularise(org)
    assert report.invoices == 1 and len(report.anomalies) == 1 and "customer C-1" in report.anomalies[0]
    assert Schedule.objects.get(contract__customer__reference="C-1", year=2024).status == "open"


def test_credit_is_carried_over_to_the_next_schedule(org):
    contract = monthly_payer(org, basis=90000)
    for month in range(1, 11):
        debit_month(org, month)
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    report = _regularise(org)
    inv = Invoice.objects.get(contract=contract)
    assert inv.balance == 60157 - 90000 and inv.credit_action == "carry_over"
    nxt = Schedule.objects.get(contract=contract, year=2025)
    assert nxt.credit_applied == 29843 and nxt.basis == 60157
    assert sum(nxt.instalments.values_list("amount", flat=True)) == 60157 - 29843
    assert report.credit_carried == 29843 and report.credit_refunded == 0
    assert not Instalment.objects.filter(invoice=inv).exists()


def test_credit_is_refunded_when_the_customer_chose_so(org):
    contract = monthly_payer(org, basis=90000)
    contract.customer.credit_preference = "refund"
    contract.customer.save()
    for month in range(1, 11):
        debit_month(org, month)
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    report = _regularise(org)
    assert Invoice.objects.get(contract=contract).credit_action == "refund"
    assert report.credit_refunded == 29843
    assert Schedule.objects.get(contract=contract, year=2025).credit_applied == 0


def test_periodic_invoices_never_bill_a_period_twice(org):
    contract = monthly_payer(org, billing="periodic", iban="")
    s.reading_record(meter=contract.meter, date=D(2024, 6, 28), index=1260, actor=ACTOR, now=at(D(2024, 6, 28)))
    first = s.periodic_invoice_run(organisation=org, period_start=D(2024, 1, 1), period_end=D(2024, 7, 1),
                                   issued_on=D(2024, 7, 5), actor=ACTOR, now=at(D(2024, 7, 5)))
    again = s.periodic_invoice_run(organisation=org, period_start=D(2024, 1, 1), period_end=D(2024, 7, 1),
                                   issued_on=D(2024, 7, 6), actor=ACTOR, now=at(D(2024, 7, 6)))
    assert (first.invoices, again.invoices) == (1, 0)
    inv = Invoice.objects.get(contract=contract)
    assert (inv.start_index, inv.end_index, inv.kind) == (1204, 1260, "periodic")
    subs = [ln for ln in inv.lines if ln["kind"] == "subscription"]
    assert subs[0]["amount"] == round(4800 * 182 / 366)
    assert Instalment.objects.get(invoice=inv).amount == inv.balance == inv.total


def test_instalment_plan_rules(org):
    contract = monthly_payer(org)
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    _regularise(org)
    inv = Invoice.objects.get(contract=contract)
    with pytest.raises(s.WaterError, match="between 2 and 12"):
        s.payment_plan_create(invoice=inv, count=24, first_due=D(2025, 1, 10), actor=ACTOR, now=at(D(2024, 12, 1)))
    s.payment_plan_create(invoice=inv, count=2, first_due=D(2025, 1, 10), actor=ACTOR, now=at(D(2024, 12, 1)))
    with pytest.raises(s.WaterError, match="déjà étalé"):
        s.payment_plan_create(invoice=inv, count=3, first_due=D(2025, 1, 10), actor=ACTOR, now=at(D(2024, 12, 1)))
    parts = Instalment.objects.filter(invoice=inv, state="planned").values_list("amount", flat=True)
    assert sum(parts) == inv.balance


def test_contract_rules(org):
    contract = monthly_payer(org)
    with pytest.raises(s.WaterError, match="already has a running contract"):
        s.contract_open(customer=contract.customer, point_reference="P-C-1", address="x", sanitation=True,
                        meter_serial="M-C-1", diameter=15, start=D(2024, 1, 1), start_index=0, actor=ACTOR,
                        now=at(D(2024, 1, 1)))
    with pytest.raises(s.WaterError, match="below the actual reading"):
        s.contract_close(contract=contract, end=D(2024, 3, 1), end_index=1000, issued_on=D(2024, 3, 2), actor=ACTOR,
                         now=at(D(2024, 3, 2)))
    with pytest.raises(s.WaterError, match="already exists"):
        s.customer_create(organisation=org, reference="C-1", name="X", actor=ACTOR, now=at(D(2024, 1, 1)))


def test_a_tariff_cannot_reprice_invoiced_days(org):
    from guichet.water.demo import TARIFF_2023

    contract = monthly_payer(org)
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    _regularise(org)
    with pytest.raises(s.WaterError, match="already issued"):
        s.tariff_set(organisation=org, valid_from=D(2024, 6, 1), definition=TARIFF_2023, actor=ACTOR,
                     now=at(D(2024, 12, 1)))
    with pytest.raises(s.WaterError, match="'headings' must be a list"):
        s.tariff_set(organisation=org, valid_from=D(2026, 1, 1), definition={}, actor=ACTOR, now=at(D(2024, 12, 1)))


# --- the property: balance = bill − collected, whatever happens; never collected twice ----------------

FATES = st.sampled_from(["collect", "collect_then_return", "outage", "leave"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fates=st.lists(FATES, min_size=10, max_size=10), basis=st.integers(min_value=1000, max_value=200_000),
       retries=st.integers(min_value=1, max_value=3))
def test_regularisation_is_bill_minus_collected_whatever_happened(org, fates, basis, retries):
    contract = monthly_payer(org, f"P{Schedule.objects.count()}", basis=basis)
    for month, fate in enumerate(fates, start=1):
        if fate == "outage":
            s.instalments_mark_not_collected(organisation=org, due_from=D(2024, month, 1),
                                             due_until=D(2024, month, 28), reason="panne", actor=ACTOR,
                                             now=at(D(2024, month, 2)))
        elif fate in ("collect", "collect_then_return"):
            for attempt in range(retries):  # a retried run (same key, or another key) never collects twice
                try:
                    debit_month(org, month, key=f"{contract.pk}-{month}-{attempt % 2}")
                except s.WaterError as e:
                    assert "no instalment to collect" in e.message
            if fate == "collect_then_return":
                line = DebitLine.objects.get(instalment__schedule__contract=contract, instalment__number=month)
                s.debit_reject(organisation=org, end_to_end_id=line.end_to_end_id, reason="MS02", actor=ACTOR,
                               now=at(D(2024, month, 20)))
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    s.regularisation_run(organisation=org, year=2024, readings_until=D(2024, 11, 30), issued_on=D(2024, 11, 25),
                         actor=ACTOR, now=at(D(2024, 11, 25)))
    inv = Invoice.objects.get(schedule__contract=contract)
    amounts = dict(Instalment.objects.filter(schedule__contract=contract, schedule__year=2024)
                   .values_list("number", "amount"))
    collected = sum(amounts[m] for m, f in enumerate(fates, start=1) if f == "collect")
    assert inv.total == 60157 and inv.deducted == collected and inv.balance == inv.total - collected
    per_instalment = DebitLine.objects.filter(instalment__schedule__contract=contract).values_list("instalment_id", flat=True)
    assert len(per_instalment) == len(set(per_instalment)) == sum(f != "outage" and f != "leave" for f in fates)


def test_a_customer_who_moved_in_in_the_autumn_gets_a_full_year_schedule(org):
    from guichet.water.rules import schedule_basis

    contract = monthly_payer(org, start=D(2024, 10, 1), index=0, basis=5000)
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=16, actor=ACTOR, now=at(D(2024, 11, 19)))
    _regularise(org)
    inv = Invoice.objects.get(contract=contract)
    nxt = Schedule.objects.get(contract=contract, year=2025)
    assert nxt.basis == schedule_basis(inv.total, 92) > 3 * inv.total
