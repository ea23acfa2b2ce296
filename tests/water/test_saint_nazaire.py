"""The Saint-Nazaire case, end to end: a monthly payer whose direct debits were suspended for four
months (March to June 2024) gets, at the annual regularisation, the actual bill minus the SIX
instalments actually collected; the figures are those of the worked example in
``docs/guide-water.md``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guichet.journal.models import Entry
from guichet.water import services as s
from guichet.water.models import Instalment, Invoice, Schedule
from guichet.water.rules import mask_iban

from .conftest import ACTOR, IBANS, D, at, debit_month, monthly_payer

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide-water.md"


def _guide_amount(label: str) -> int:
    """An amount of the guide's worked example, e.g. ``| Regularisation | 313,57 € |``."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"\|\s*{re.escape(label)}\s*\|\s*(-?[\d\u202f ]+),(\d\d)\s*€", text)
    assert match, f"the guide's worked example has no line {label!r}"
    return int(match.group(1).replace("\u202f", "").replace(" ", "")) * 100 + int(match.group(2))


@pytest.fixture
def year_2024(org):
    contract = monthly_payer(org)
    for month in (1, 2):
        debit_month(org, month)
    count, amount = s.instalments_mark_not_collected(
        organisation=org, due_from=D(2024, 3, 1), due_until=D(2024, 6, 30),
        reason="Cyberattaque : aucun prélèvement possible", actor=ACTOR, now=at(D(2024, 7, 1)))
    assert (count, amount) == (4, 4 * 4800)
    for month in (7, 8, 9, 10):
        debit_month(org, month)
    s.readings_import(organisation=org, text="meter;date;index;kind\nM-C-1;18/11/2024;1322;réel\n",
                      actor=ACTOR, now=at(D(2024, 11, 19)))
    report = s.regularisation_run(organisation=org, year=2024, readings_until=D(2024, 11, 30),
                                  issued_on=D(2024, 11, 25), actor=ACTOR, now=at(D(2024, 11, 25)))
    return contract, report


def test_the_outage_is_settled_at_the_regularisation(year_2024):
    contract, report = year_2024
    states = list(Instalment.objects.filter(schedule__contract=contract, schedule__year=2024)
                  .order_by("number").values_list("state", flat=True))
    assert states == ["collected"] * 2 + ["not_collected"] * 4 + ["collected"] * 4
    invoice = Invoice.objects.get(contract=contract, kind="regularisation")
    assert invoice.deducted == 6 * 4800 == _guide_amount("Instalments actually collected (6 × 48,00 €)")
    assert invoice.total == _guide_amount("Actual bill 2024 (incl. VAT)") == 60157
    assert invoice.balance == invoice.total - invoice.deducted == _guide_amount("Regularisation due") == 31357
    assert invoice.total_excl_vat == _guide_amount("Total excl. VAT")
    assert invoice.vat == {"5.5": _guide_amount("VAT 5.5 % on 266,30 €"), "10": _guide_amount("VAT 10 % on 291,47 €")}
    # The balance is due on its own, debited like any other instalment.
    due = Instalment.objects.get(invoice=invoice)
    assert (due.amount, due.state, due.due_date) == (31357, "planned", D(2024, 12, 15))
    # The next year's schedule follows from the actual bill.
    nxt = Schedule.objects.get(contract=contract, year=2025)
    assert list(nxt.instalments.values_list("amount", flat=True)) == [6016] * 7 + [6015] * 3
    assert _guide_amount("2025 instalments 1 to 7") == 6016 and _guide_amount("2025 instalments 8 to 10") == 6015
    assert Schedule.objects.get(contract=contract, year=2024).status == "regularised"
    assert report.as_summary()["not_collected"] == 4 * 4800 and report.collected == 6 * 4800


def test_the_balance_can_be_spread_and_is_debited_in_the_next_runs(year_2024):
    contract, _ = year_2024
    invoice = Invoice.objects.get(contract=contract, kind="regularisation")
    plan = s.payment_plan_create(invoice=invoice, count=3, first_due=D(2025, 1, 10), actor=ACTOR,
                                 now=at(D(2024, 12, 2)))
    assert [p.amount for p in plan] == [10453, 10452, 10452]
    assert Instalment.objects.get(invoice=invoice, number=1).state == "cancelled"
    run = debit_month(contract.organisation, 1, year=2025)
    # January 2025: the first instalment of the new schedule and the first part of the plan.
    assert run.count == 2 and run.control_sum == 6016 + 10453


def test_a_second_regularisation_run_finds_nothing_and_changes_nothing(year_2024):
    contract, _ = year_2024
    with pytest.raises(s.WaterError, match="nothing to regularise"):
        s.regularisation_run(organisation=contract.organisation, year=2024, readings_until=D(2024, 11, 30),
                             issued_on=D(2024, 11, 26), actor=ACTOR, now=at(D(2024, 11, 26)))
    assert Invoice.objects.filter(contract=contract).count() == 1


def test_the_journal_records_every_step_without_personal_data(year_2024):
    contract, _ = year_2024
    ops = list(Entry.objects.filter(chain=contract.organisation_id).values_list("operation", flat=True))
    for op in ("water.customer_create", "water.contract_open", "water.mandate_create", "water.schedule_create",
               "water.debit_run", "water.instalments_not_collected", "water.readings_import",
               "water.regularisation_run"):
        assert op in ops
    text = str(list(Entry.objects.values_list("details", flat=True)))
    assert IBANS[0] not in text and "Client C-1" not in text


def test_masked_iban():
    assert mask_iban(IBANS[0]) == "FR76 •••• 6702"
