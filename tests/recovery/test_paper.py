"""Paper forms entered after an outage: original time and number, receipt order, idempotency by
number, duplicates and gaps reported, deposits with their receipt numbers; all journaled."""

from __future__ import annotations

import datetime as dt

import pytest

from guichet.billing.models import Payment
from guichet.bookings import services as bookings
from guichet.bookings.models import Basket, Booking
from guichet.journal.models import Entry
from guichet.recovery import selectors
from guichet.recovery import services as paper
from guichet.recovery.models import PaperForm
from guichet.recovery.services import RecoveryError
from tests.bookings.test_services import AGENT, World, item, paris

pytestmark = pytest.mark.django_db

ENTERED = paris(2024, 12, 2, 9, 0)  # typed in after the booking deadline of 4 December (Sunday 1st)
HANDED_IN = paris(2024, 11, 27, 10, 15)  # the form was handed in before the deadline


@pytest.fixture
def world(db):
    return World(capacity=1)


def record(world, household, items, *, number, series="A", received_at=HANDED_IN, now=ENTERED, **kw):
    return paper.paper_booking_record(organisation=world.org, series=series, number=number, received_at=received_at,
                                      household=household, items=items, actor=AGENT, now=now, **kw)


def test_a_paper_form_books_with_its_original_time_even_after_the_deadline(world):
    session = world.session()
    hh, (child,) = world.household()
    result = record(world, hh, [item(child, session)], number=12)
    assert result.created and result.booked == 1
    booking = Booking.objects.get()
    assert booking.booked_at == HANDED_IN and booking.channel == "paper" and not booking.after_deadline
    assert result.basket.received_at == HANDED_IN
    form = PaperForm.objects.get()
    assert (form.series, form.number, form.received_at, form.entered_at) == ("A", 12, HANDED_IN, ENTERED)
    ops = list(Entry.objects.values_list("operation", flat=True))
    assert "recovery.paper.booking.record" in ops and "bookings.basket.answer" in ops
    recorded = Entry.objects.get(operation="recovery.paper.booking.record")
    assert recorded.details["number"] == 12 and "Enfant" not in str(recorded.details)


def test_a_form_handed_in_after_the_deadline_is_refused_like_online(world):
    session = world.session()
    hh, (child,) = world.household()
    result = record(world, hh, [item(child, session)], number=1, received_at=paris(2024, 12, 2, 8, 0))
    assert result.booked == 0 and result.basket.result["items"][0]["code"] == "deadline_passed"


def test_the_same_form_entered_twice_acts_once(world):
    session = world.session()
    hh, (child,) = world.household()
    first = record(world, hh, [item(child, session)], number=5)
    entries = Entry.objects.count()
    again = record(world, hh, [item(child, session)], number=5, now=ENTERED + dt.timedelta(hours=1))
    assert not again.created and again.form.pk == first.form.pk and again.basket.pk == first.basket.pk
    assert Booking.objects.count() == 1 and PaperForm.objects.count() == 1 and Entry.objects.count() == entries


def test_a_crash_between_the_form_and_its_booking_is_repaired_by_entering_it_again(world, monkeypatch):
    session = world.session()
    hh, (child,) = world.household()

    def crash(**kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(bookings, "basket_submit", crash)
    with pytest.raises(RuntimeError):
        record(world, hh, [item(child, session)], number=8)
    assert PaperForm.objects.count() == 1 and not Basket.objects.exists()
    monkeypatch.undo()
    result = record(world, hh, [item(child, session)], number=8)
    assert not result.created and result.booked == 1 and Booking.objects.count() == 1


def test_another_form_with_the_same_number_is_refused_then_kept_as_a_reported_duplicate(world):
    session = world.session()
    (h1, (c1,)), (h2, (c2,)) = world.household(), world.household()
    record(world, h1, [item(c1, session)], number=7)
    with pytest.raises(RecoveryError) as exc:
        record(world, h2, [item(c2, session)], number=7)
    assert exc.value.code == "duplicate_number" and "A-7" in exc.value.message
    assert PaperForm.objects.count() == 1 and Basket.objects.count() == 1  # nothing changed
    second = record(world, h2, [item(c2, session)], number=7, duplicate=True)
    assert second.created and second.form.copy == 2
    report = selectors.numbering(world.org)
    assert report[0].duplicates == [(7, 2)]


def test_gaps_are_reported_until_entered_or_declared_void(world):
    session = world.session(capacity=10)
    hh, (child,) = world.household()
    for n in (1, 2, 5, 9):
        record(world, hh, [item(child, session)], number=n, received_at=HANDED_IN + dt.timedelta(minutes=n))
    (series,) = selectors.numbering(world.org)
    assert (series.first, series.last, series.gaps, series.missing) == (1, 9, [(3, 4), (6, 8)], 5)
    paper.paper_void(organisation=world.org, kind="booking", series="A", number=3, reason="Formulaire déchiré",
                     actor=AGENT, now=ENTERED)
    (series,) = selectors.numbering(world.org)
    assert series.gaps == [(4, 4), (6, 8)] and series.void == [3]
    with pytest.raises(RecoveryError) as exc:
        paper.paper_void(organisation=world.org, kind="booking", series="A", number=5, reason="x", actor=AGENT,
                         now=ENTERED)
    assert exc.value.code == "number_entered"


def test_forms_compete_for_places_in_the_order_they_were_handed_in(world):
    """One place left; three families' forms, typed in any order in one import file: the one
    handed in first gets it, the others are refused (partial mode: waiting list)."""
    world.session()  # capacity 1
    families = [world.household() for _ in range(3)]
    times = ["2024-11-27 10:40", "2024-11-27 09:05", "2024-11-27 11:30"]
    lines = ["series;number;received_at;household;child;activity;site;date;unit"]
    for n, ((hh, (child,)), when) in enumerate(zip(families, times, strict=True), start=1):
        lines.append(f"A;{n};{when};{hh.reference};{child.first_name};mercredis;centre;2024-12-04;journee")
    report = paper.paper_bookings_import(organisation=world.org, text="\n".join(lines), actor=AGENT, now=ENTERED)
    assert not report.errors and report.forms == 3 and report.booked == 1 and report.waitlisted == 2
    winner = Booking.objects.get(status="booked")
    assert winner.household == families[1][0]  # handed in at 09:05
    # The waiting list is in the same order: 10:40 then 11:30.
    from guichet.bookings.models import WaitlistEntry
    assert [e.household_id for e in WaitlistEntry.objects.order_by("pk")] == [families[0][0].pk, families[2][0].pk]
    # The same file again: nothing more.
    again = paper.paper_bookings_import(organisation=world.org, text="\n".join(lines), actor=AGENT, now=ENTERED)
    assert again.created == 0 and again.already == 3 and Booking.objects.count() == 1


def test_a_form_entered_late_cannot_take_back_a_place_and_is_reported(world):
    session = world.session()
    (h1, (c1,)), (h2, (c2,)) = world.household(), world.household()
    record(world, h1, [item(c1, session)], number=2, received_at=paris(2024, 11, 27, 11, 0))
    late = record(world, h2, [item(c2, session)], number=1, received_at=paris(2024, 11, 27, 9, 0),
                  now=ENTERED + dt.timedelta(hours=2))
    assert late.booked == 0
    (entry,) = selectors.entered_out_of_order(world.org)
    assert entry.form.number == 1 and entry.overtaken_by == 1


def test_bad_input_is_refused_and_changes_nothing(world):
    session = world.session()
    hh, (child,) = world.household()
    other, (stranger,) = world.household()
    cases = [
        (dict(number=0), "invalid_number"),
        (dict(number="abc"), "invalid_number"),
        (dict(number=1, series=""), "invalid_series"),
        (dict(number=1, series="a b"), "invalid_series"),
        (dict(number=1, received_at=ENTERED + dt.timedelta(days=1)), "received_in_future"),
        (dict(number=1, received_at=dt.datetime(2024, 11, 27, 10, 0)), "invalid_received_at"),  # noqa: DTZ001
        (dict(number=1, items=[]), "empty_form"),
        (dict(number=1, items=[item(stranger, session)]), "not_your_child"),
        (dict(number=1, items=[{"child": child.pk, "session": 999999, "unit": "journee"}]), "unknown_session"),
        (dict(number=1, items=[item(child, session, unit="nope")]), "unit_not_offered"),
        (dict(number=1, mode="whatever"), "invalid_mode"),
    ]
    for kwargs, code in cases:
        kwargs.setdefault("items", [item(child, session)])
        with pytest.raises(RecoveryError) as exc:
            record(world, hh, **kwargs)
        assert exc.value.code == code, kwargs
    assert not PaperForm.objects.exists() and not Basket.objects.exists() and not Entry.objects.exists()


def test_import_errors_name_the_line_and_column_and_enter_nothing(world):
    world.session()
    hh, (child,) = world.household()
    text = ("series;number;received_at;household;child;activity;site;date;unit\n"
            f"A;1;2024-11-27 10:00;{hh.reference};{child.first_name};mercredis;centre;2024-12-04;journee\n"
            f"A;2;27 novembre;{hh.reference};{child.first_name};mercredis;centre;2024-12-04;journee\n"
            f"A;3;2024-11-27 10:00;NOPE;{child.first_name};mercredis;centre;2024-12-04;journee\n")
    report = paper.paper_bookings_import(organisation=world.org, text=text, actor=AGENT, now=ENTERED)
    assert [(line, col) for line, col, _m in report.errors] == [(3, "received_at"), (4, "household")]
    assert not PaperForm.objects.exists() and not Booking.objects.exists()
    missing = paper.paper_bookings_import(organisation=world.org, text="series;number\nA;1\n", actor=AGENT,
                                          now=ENTERED)
    assert missing.errors and "received_at" in missing.errors[0][2]


def test_import_reports_every_error_of_every_line(world):
    """QA: the file used to stop at the first problem of each line; the agent fixed it, imported
    again, and met the next one. Now every problem of every line is listed at once."""
    world.session()
    hh, (child,) = world.household()
    other, (stranger,) = world.household()
    text = ("series;number;received_at;household;child;activity;site;date;unit\n"
            # line 2: four problems (series, number, time, unit)
            f"a b;x;27 novembre;{hh.reference};{child.first_name};mercredis;centre;2024-12-04;nope\n"
            # line 3: fine
            f"A;1;2024-11-27 10:00;{hh.reference};{child.first_name};mercredis;centre;2024-12-04;journee\n"
            # line 4: unknown family file, activity and site; a date that is not one
            f"A;2;2024-11-27 10:00;NOPE;{child.first_name};piscine;gymnase;04/13/2024;journee\n"
            # line 5: a child not in this file, and no session on that day
            f"A;3;2024-11-27 10:00;{hh.reference};{stranger.first_name}x;mercredis;centre;2024-12-11;journee\n"
            # line 6: same form as line 3 with another family file: a form-level problem, on its own line
            f"A;1;2024-11-27 10:00;{other.reference};{stranger.first_name};mercredis;centre;2024-12-04;journee\n"
            # line 7: handed in after it was typed in
            f"A;4;2024-12-03 10:00;{hh.reference};{child.first_name};mercredis;centre;2024-12-04;journee\n")
    report = paper.paper_bookings_import(organisation=world.org, text=text, actor=AGENT, now=ENTERED)
    assert [(line, col) for line, col, _m in report.errors] == [
        (2, "series"), (2, "number"), (2, "received_at"), (2, "unit"),
        (4, "household"), (4, "activity"), (4, "site"), (4, "date"),
        (5, "child"), (5, "date"),
        (6, "number"),
        (7, "received_at"),
    ]
    assert all(message for _l, _c, message in report.errors)
    assert report.forms == 0
    assert not PaperForm.objects.exists() and not Booking.objects.exists() and not Entry.objects.exists()


def test_a_paper_deposit_keeps_its_receipt_number_and_original_time(world):
    hh, _ = world.household()
    when = paris(2024, 11, 22, 16, 30)
    paper.paper_deposit_record(organisation=world.org, series="R2024", number=31, received_at=when,
                                        household=hh, amount_cents=4500, method="cheque", reference="chq 1234567",
                                        actor=AGENT, now=ENTERED)
    payment = Payment.objects.get()
    assert payment.kind == "deposit" and payment.amount_cents == 4500 and payment.received_at == when
    assert "R2024-31" in payment.reference and payment.receipt_number  # the system's receipt number too
    again = paper.paper_deposit_record(organisation=world.org, series="R2024", number=31, received_at=when,
                                       household=hh, amount_cents=4500, method="cheque", reference="chq 1234567",
                                       actor=AGENT, now=ENTERED)
    assert not again.created and again.payment.pk == payment.pk and Payment.objects.count() == 1
    with pytest.raises(RecoveryError) as exc:
        paper.paper_deposit_record(organisation=world.org, series="R2024", number=31, received_at=when,
                                   household=hh, amount_cents=5000, method="cash", actor=AGENT, now=ENTERED)
    assert exc.value.code == "duplicate_number"
    with pytest.raises(RecoveryError) as exc:
        paper.paper_deposit_record(organisation=world.org, series="R2024", number=32, received_at=when,
                                   household=hh, amount_cents=-5, method="cash", actor=AGENT, now=ENTERED)
    assert exc.value.code == "invalid_amount" and Payment.objects.count() == 1
    ops = set(Entry.objects.values_list("operation", flat=True))
    assert {"recovery.paper.deposit.record", "billing.deposit.record"} <= ops
