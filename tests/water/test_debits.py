"""SEPA: identifiers, mandates, debit runs (XSD-valid pain.008, control sum, sequence types,
idempotency, never twice), returns, and the outage guard."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from lxml import etree

from guichet.water import sepa
from guichet.water import services as s
from guichet.water.models import DebitLine, Instalment, Mandate

from .conftest import ACTOR, IBANS, D, at, debit_month, monthly_payer

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"}


def test_creditor_identifier_and_iban_are_checked():
    assert sepa.clean_creditor_id("FR72ZZZ123456") == "FR72ZZZ123456"
    with pytest.raises(sepa.SepaError, match="not a valid SEPA creditor identifier"):
        sepa.clean_creditor_id("FR73ZZZ123456")
    assert sepa.clean_iban("fr76 3000 4000 0000 0312 3456 702") == IBANS[0]
    with pytest.raises(sepa.SepaError) as e:
        sepa.clean_iban("FR7630004000000003123456703")
    assert "3123456703" not in str(e.value)  # the message never repeats the IBAN


def test_bad_mandate_input_changes_nothing(org):
    contract = monthly_payer(org, iban="")
    with pytest.raises(s.WaterError, match="IBAN is not valid"):
        s.mandate_create(customer=contract.customer, reference="RUM-X", signed_on=D(2020, 1, 1),
                         iban="FR7630004000000003123456703", actor=ACTOR, now=at(D(2024, 1, 1)))
    s.mandate_create(customer=contract.customer, reference="RUM-X", signed_on=D(2020, 1, 1), iban=IBANS[1],
                     actor=ACTOR, now=at(D(2024, 1, 1)))
    other = monthly_payer(org, "C-2", iban="")
    with pytest.raises(s.WaterError, match="already used"):
        s.mandate_create(customer=other.customer, reference="RUM-X", signed_on=D(2020, 1, 1), iban=IBANS[2],
                         actor=ACTOR, now=at(D(2024, 1, 1)))
    assert Mandate.objects.filter(organisation=org).count() == 1


def test_a_debit_run_is_a_valid_pain008_whose_control_sum_is_its_instalments(org):
    monthly_payer(org, "C-1", basis=48000)
    monthly_payer(org, "C-2", basis=36001, iban=IBANS[1])
    monthly_payer(org, "C-3", basis=30000, iban="")  # no mandate: reported, not debited
    report = debit_month(org, 1)
    xml = bytes(report.run.xml)
    sepa.validate_pain008(xml)
    assert sepa.control_sum(xml) == (2, 4800 + 3601)
    assert report.control_sum == sum(DebitLine.objects.filter(run=report.run).values_list("amount", flat=True))
    doc = etree.fromstring(xml)
    assert [e.text for e in doc.iterfind(".//p:SeqTp", NS)] == ["FRST"]
    assert any("without an active mandate" in a for a in report.anomalies)
    # February: recurrent.
    feb = debit_month(org, 2)
    assert [e.text for e in etree.fromstring(bytes(feb.run.xml)).iterfind(".//p:SeqTp", NS)] == ["RCUR"]


def test_a_corrupted_file_fails_the_schema():
    bad = b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"><Nope/></Document>'
    with pytest.raises(sepa.SepaError, match="does not match the pain.008.001.08 schema"):
        sepa.validate_pain008(bad)


def test_same_key_returns_the_same_run_and_collects_nothing_more(org):
    monthly_payer(org)
    first = debit_month(org, 1)
    again = debit_month(org, 1)
    assert not again.created and again.run.pk == first.run.pk
    # Another key over the same month finds nothing left to collect.
    with pytest.raises(s.WaterError, match="no instalment to collect"):
        debit_month(org, 1, key="other-key")
    assert DebitLine.objects.filter(organisation=org).count() == 1


def test_the_database_refuses_an_instalment_in_two_files(org):
    monthly_payer(org)
    run = debit_month(org, 1).run
    line = DebitLine.objects.get(run=run)
    with pytest.raises(IntegrityError), transaction.atomic():
        DebitLine.objects.create(organisation=org, run=run, instalment_id=line.instalment_id, mandate=line.mandate,
                                 amount=line.amount, sequence_type="RCUR", end_to_end_id="other")


def test_outage_instalments_are_never_swept_into_a_later_run(org):
    monthly_payer(org)
    s.instalments_mark_not_collected(organisation=org, due_from=D(2024, 1, 1), due_until=D(2024, 2, 28),
                                     reason="panne", actor=ACTOR, now=at(D(2024, 3, 1)))
    # Even a run whose period covers the outage months does not collect them.
    report = s.debit_run_create(organisation=org, collection_date=D(2024, 3, 10), due_from=D(2024, 1, 1),
                                due_until=D(2024, 3, 31), idempotency_key="k", actor=ACTOR, now=at(D(2024, 3, 3)))
    assert report.count == 1 and report.control_sum == 4800
    states = list(Instalment.objects.filter(customer__organisation=org).order_by("number")
                  .values_list("state", flat=True))[:3]
    assert states == ["not_collected", "not_collected", "collected"]


def test_overdue_planned_instalments_are_reported_not_collected(org):
    monthly_payer(org)
    report = debit_month(org, 3)
    assert report.count == 1
    assert any("2 planned instalment(s) due before 2024-03-01" in a for a in report.anomalies)


def test_a_return_leaves_the_instalment_uncollected_once(org):
    monthly_payer(org)
    run = debit_month(org, 1).run
    e2e = DebitLine.objects.get(run=run).end_to_end_id
    assert s.debit_reject(organisation=org, end_to_end_id=e2e, reason="am04", actor=ACTOR, now=at(D(2024, 1, 20)))
    assert not s.debit_reject(organisation=org, end_to_end_id=e2e, reason="AM04", actor=ACTOR, now=at(D(2024, 1, 21)))
    assert Instalment.objects.get(debit_lines__end_to_end_id=e2e).state == "rejected"
    with pytest.raises(s.WaterError, match="4 letters or digits"):
        s.debit_reject(organisation=org, end_to_end_id=e2e, reason="bad reason", actor=ACTOR, now=at(D(2024, 1, 21)))
    with pytest.raises(s.WaterError, match="no debit"):
        s.debit_reject(organisation=org, end_to_end_id="W0-I0", reason="AM04", actor=ACTOR, now=at(D(2024, 1, 21)))


def test_collection_date_in_the_past_is_refused(org):
    monthly_payer(org)
    with pytest.raises(s.WaterError, match="collection date is in the past"):
        s.debit_run_create(organisation=org, collection_date=D(2024, 1, 10), due_from=D(2024, 1, 1),
                           due_until=D(2024, 1, 31), idempotency_key="k", actor=ACTOR, now=at(D(2024, 1, 11)))


def test_last_debit_after_move_out_is_final(org):
    contract = monthly_payer(org)
    debit_month(org, 1)
    invoice = s.contract_close(contract=contract, end=D(2024, 1, 20), end_index=1220, issued_on=D(2024, 1, 22),
                               actor=ACTOR, now=at(D(2024, 1, 21)))
    assert invoice.kind == "final" and invoice.deducted == 4800
    assert set(Instalment.objects.filter(schedule__contract=contract).exclude(number=1)
               .values_list("state", flat=True)) == {"cancelled"}
    run = debit_month(org, 2)
    assert run.by_sequence == {"FNAL": 1} and run.control_sum == invoice.balance


def test_one_off_mandate_debits_ooff(org):
    contract = monthly_payer(org, iban="")
    s.mandate_create(customer=contract.customer, reference="RUM-1", signed_on=D(2020, 1, 1), iban=IBANS[1],
                     one_off=True, actor=ACTOR, now=at(D(2024, 1, 1)))
    assert debit_month(org, 1).by_sequence == {"OOFF": 1}


def test_journal_of_a_debit_run_holds_no_iban_or_name(org):
    from guichet.journal.models import Entry

    monthly_payer(org)
    debit_month(org, 1)
    entry = Entry.objects.filter(operation="water.debit_run").get()
    assert IBANS[0] not in str(entry.details) and "Client" not in str(entry.details)
    assert entry.details["count"] == 1 and entry.details["control_sum"] == 4800


def test_collection_date_is_compared_with_the_day_in_paris(org):
    import datetime as dt

    monthly_payer(org)
    late = dt.datetime(2024, 1, 9, 23, 30, tzinfo=dt.UTC)  # already 10 January, 00:30, in Paris
    kwargs = {"organisation": org, "due_from": D(2024, 1, 1), "due_until": D(2024, 1, 31), "actor": ACTOR, "now": late}
    with pytest.raises(s.WaterError, match="in the past"):
        s.debit_run_create(collection_date=D(2024, 1, 9), idempotency_key="a", **kwargs)
    assert s.debit_run_create(collection_date=D(2024, 1, 10), idempotency_key="b", **kwargs).count == 1
