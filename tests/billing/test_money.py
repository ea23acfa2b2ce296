"""Deposits, payments, refunds, credit notes and the computed balance."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guichet.billing import selectors, services
from guichet.billing.errors import BillingError
from guichet.billing.models import BilledItem, Invoice, Payment
from guichet.journal.models import Entry

from . import factories as f

pytestmark = pytest.mark.django_db

OCT = dt.date(2024, 10, 1)
LATER = dt.datetime(2025, 1, 15, 9, tzinfo=dt.UTC)


@pytest.fixture
def town():
    return f.town()


def issued_invoice(org, site, acts, *, days=4, quotient=700, h=None):
    """One household, ``days`` Wednesdays of October at 9.00 (bracket B), invoiced and issued."""
    h = h or f.household(org)
    if quotient is not None:
        f.quotient(h, dt.date(2024, 1, 1), quotient)
    child = h.children.first()
    for d in f.wednesdays(2024, 10)[:days]:
        f.book(child, f.session(org, site, acts["mercredis"], d))
    run = f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    services.invoice_run_finalise(run=run, actor=f.ACTOR, now=LATER)
    return h, Invoice.objects.get(run=run, household=h)


def test_deposit_has_a_receipt_and_a_retry_records_once(town):
    org, _site, _acts = town
    h = f.household(org)
    kw = dict(household=h, amount_cents=5000, method="cheque", actor=f.ACTOR, now=f.NOW, idempotency_key="click-1",
              reference="1234567")
    first = services.deposit_record(**kw)
    again = services.deposit_record(**kw)
    assert first.pk == again.pk and first.receipt_number == "REC-2024-000001"
    assert Payment.objects.count() == 1
    assert Entry.objects.filter(operation="billing.deposit.record").count() == 1
    second = services.deposit_record(**{**kw, "idempotency_key": "click-2"})
    assert second.receipt_number == "REC-2024-000002"
    with pytest.raises(BillingError) as e:
        services.deposit_record(**{**kw, "amount_cents": 6000})  # same key, other amount
    assert e.value.code == "key_reused"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"amount_cents": 0}, "amount_cents"), ({"amount_cents": -5}, "amount_cents"),
    ({"amount_cents": 12.5}, "amount_cents"), ({"method": "bitcoin"}, "method"), ({"idempotency_key": ""},
                                                                                   "idempotency_key"),
])
def test_deposit_refuses_bad_input_and_records_nothing(town, kwargs, field):
    org, _site, _acts = town
    h = f.household(org)
    args = dict(household=h, amount_cents=5000, method="cash", actor=f.ACTOR, now=f.NOW, idempotency_key="k")
    with pytest.raises(BillingError) as e:
        services.deposit_record(**{**args, **kwargs})
    assert e.value.field == field and not Payment.objects.exists()


def test_deposit_journal_holds_no_personal_data(town):
    org, _site, _acts = town
    h = f.household(org)
    services.deposit_record(household=h, amount_cents=5000, method="cheque", actor=f.ACTOR, now=f.NOW,
                            idempotency_key="k", reference="CHQ 998877 Dupont")
    entry = Entry.objects.get(operation="billing.deposit.record")
    assert "Dupont" not in str(entry.details) and "998877" not in str(entry.details)


def test_deposit_after_the_invoice_is_applied_at_once(town):
    org, site, acts = town
    h, invoice = issued_invoice(org, site, acts)
    assert selectors.invoice_due(invoice) == 3600
    services.deposit_record(household=h, amount_cents=2000, method="cash", actor=f.ACTOR, now=LATER,
                            idempotency_key="d")
    assert selectors.invoice_due(invoice) == 1600


def test_payment_and_overpayment(town):
    org, site, acts = town
    h, invoice = issued_invoice(org, site, acts)
    services.payment_record(invoice=invoice, amount_cents=4000, method="card", actor=f.ACTOR, now=LATER,
                            idempotency_key="p")
    b = selectors.household_balance(household=h)
    assert selectors.invoice_due(invoice) == 0
    assert (b.balance, b.available_credit, b.due) == (-400, 400, 0)
    # the surplus goes to the next invoice at its finalisation
    child = h.children.get()
    f.book(child, f.session(org, site, acts["mercredis"], dt.date(2024, 11, 6)))
    nov = f.run(org, dt.date(2024, 11, 1), dt.date(2024, 11, 1), [acts["mercredis"]], now=LATER)
    services.invoice_run_finalise(run=nov, actor=f.ACTOR, now=LATER)
    assert selectors.invoice_due(Invoice.objects.get(run=nov)) == 950 - 400
    assert selectors.household_balance(household=h).balance == 550


def test_payment_of_a_draft_is_refused(town):
    org, site, acts = town
    h = f.household(org)
    f.book(h.children.get(), f.session(org, site, acts["mercredis"], dt.date(2024, 10, 2)))
    f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    draft = Invoice.objects.get()
    with pytest.raises(BillingError) as e:
        services.payment_record(invoice=draft, amount_cents=100, method="cash", actor=f.ACTOR, now=LATER,
                                idempotency_key="p")
    assert e.value.code == "not_issued" and not Payment.objects.exists()


def test_refund_at_most_the_credit(town):
    org, site, acts = town
    h = f.household(org)
    services.deposit_record(household=h, amount_cents=5000, method="cash", actor=f.ACTOR, now=f.NOW,
                            idempotency_key="d")
    with pytest.raises(BillingError) as e:
        services.refund_record(household=h, amount_cents=5001, method="cash", actor=f.ACTOR, now=f.NOW,
                               idempotency_key="r", reason="moving out")
    assert e.value.code == "more_than_credit"
    with pytest.raises(BillingError) as e:
        services.refund_record(household=h, amount_cents=100, method="cash", actor=f.ACTOR, now=f.NOW,
                               idempotency_key="r", reason="")
    assert e.value.code == "reason_required"
    services.refund_record(household=h, amount_cents=2000, method="transfer", actor=f.ACTOR, now=f.NOW,
                           idempotency_key="r", reason="moving out")
    b = selectors.household_balance(household=h)
    assert (b.balance, b.available_credit) == (-3000, 3000)


def test_full_credit_note_with_rebilling(town):
    org, site, acts = town
    h, invoice = issued_invoice(org, site, acts, quotient=None)  # no quotient: default bracket D, 17.00
    assert invoice.total_cents == 4 * 1700
    f.quotient(h, dt.date(2024, 1, 1), 300)  # the family brings its CAF letter: bracket A
    note = services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="quotient received late",
                                       idempotency_key="cn1", rebill=True)
    assert (note.kind, note.status, note.number, note.total_cents) == ("credit_note", "final", "AV-2025-000001", 6800)
    assert not BilledItem.objects.exists()
    rebill = f.run(org, OCT, OCT, [acts["mercredis"]], now=LATER)
    services.invoice_run_finalise(run=rebill, actor=f.ACTOR, now=LATER)
    new = Invoice.objects.get(run=rebill)
    assert new.total_cents == 4 * 500
    b = selectors.household_balance(household=h)
    assert b.balance == 2000 and b.invoiced == 6800 + 2000 and b.credited == 6800
    # same key: the same credit note; nothing left to credit on the corrected invoice
    assert services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="x",
                                       idempotency_key="cn1").pk == note.pk
    with pytest.raises(BillingError) as e:
        services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="x", idempotency_key="cn2")
    assert e.value.code == "nothing_to_credit"


def test_partial_credit_note_and_paid_invoice(town):
    org, site, acts = town
    h, invoice = issued_invoice(org, site, acts)
    services.payment_record(invoice=invoice, amount_cents=3600, method="cash", actor=f.ACTOR, now=LATER,
                            idempotency_key="p")
    line = invoice.lines.get()
    with pytest.raises(BillingError) as e:
        services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="x", idempotency_key="c",
                                    amounts={line.pk: 3601})
    assert e.value.code == "invalid_amount"
    with pytest.raises(BillingError) as e:
        services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="x", idempotency_key="c",
                                    amounts={line.pk: 900}, rebill=True)
    assert e.value.code == "rebill_needs_full"
    note = services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="centre closed one day",
                                       idempotency_key="c", amounts={line.pk: 900})
    assert note.total_cents == 900 and BilledItem.objects.count() == 4
    b = selectors.household_balance(household=h)
    assert (b.balance, b.available_credit) == (-900, 900)  # paid in full, then credited: the family is owed 9.00
    services.refund_record(household=h, amount_cents=900, method="transfer", actor=f.ACTOR, now=LATER,
                           idempotency_key="r", reason="credit note refunded")
    assert selectors.household_balance(household=h).balance == 0


operations = st.lists(
    st.tuples(st.sampled_from(["deposit", "payment", "credit"]), st.integers(1, 6000)), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, order=st.randoms(use_true_random=False))
def test_balance_does_not_depend_on_the_order_of_recording(town, ops, order):
    """The same deposits, payments and credit notes recorded in two different orders give the
    same balance, the same amount owed and the same credit available."""
    org, site, acts = town
    results = []
    for attempt in range(2):
        sequence = list(ops) if attempt == 0 else order.sample(list(ops), len(ops))
        h, invoice = issued_invoice(org, site, acts, h=f.household(org))
        line = invoice.lines.get()
        for i, (kind, cents) in enumerate(sequence):
            key = f"{h.pk}-{i}"
            if kind == "deposit":
                services.deposit_record(household=h, amount_cents=cents, method="cash", actor=f.ACTOR, now=LATER,
                                        idempotency_key=key)
            elif kind == "payment":
                services.payment_record(invoice=invoice, amount_cents=cents, method="card", actor=f.ACTOR,
                                        now=LATER, idempotency_key=key)
            else:  # at most 6 x 3.00 credited on a 36.00 line: always accepted
                services.credit_note_create(invoice=invoice, actor=f.ACTOR, now=LATER, reason="r", idempotency_key=key,
                                            amounts={line.pk: min(cents, 300)})
        b = selectors.household_balance(household=h)
        assert b.balance == b.due - b.available_credit
        assert not (b.due > 0 and b.available_credit > 0)  # credit is always applied to what is owed
        results.append(b)
    assert results[0] == results[1]
