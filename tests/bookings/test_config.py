"""Activity configuration files and the seed rules end to end (frozen time)."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone, translation

from guichet.bookings import selectors, services
from guichet.bookings.config import ConfigError, load_config, parse_config
from guichet.bookings.demo import demo_paths
from guichet.bookings.models import (
    Activity,
    Booking,
    Child,
    Guardian,
    Household,
    RegistrationWindow,
    Session,
    SessionPart,
    Site,
    Unit,
)
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor

PARIS = ZoneInfo("Europe/Paris")
CLI = Actor.cli()
NOW = dt.datetime(2022, 11, 1, 9, 0, tzinfo=PARIS)

MINIMAL = """\
format: guichet-bookings/1
portal: ville-test
organisation: ville
sites:
  - slug: centre
    name: Centre
activities:
  - slug: mercredis
    name: Mercredis
    kind: leisure_wednesday
    parts: [morning, meal, afternoon]
    units:
      - code: journee
        name: Journée
        parts: [morning, meal, afternoon]
    booking_rule: sunday before at 23:59
    cancellation_rule: sunday of previous week
    sites:
      - site: centre
        capacity: {morning: 10, meal: 12, afternoon: 10}
    calendar:
      - every: wednesday
        in: term
        zone: C
        from: 2022-11-01
        to: 2022-12-31
      - dates: [2022-12-21]
    closures: [2022-11-16]
    windows:
      - first_date: 2022-11-01
        last_date: 2022-12-31
        opens_at: "2022-10-15T12:30 Europe/Paris"
        residents_open_at: 2022-10-14 12:30
"""


@pytest.fixture
def town(db):
    portal = Portal.objects.create(slug="ville-test", name="Ville test")
    return Organisation.objects.create(portal=portal, slug="ville", name="Ville")


def test_load_creates_sessions_from_the_calendar_and_twice_changes_nothing(town):
    report = load_config(MINIMAL, "test.yaml", actor=CLI, now=NOW)
    dates = sorted(Session.objects.values_list("date", flat=True))
    # Wednesdays in term (zone C) in Nov-Dec 2022, minus the closure, plus the explicit date.
    assert dt.date(2022, 11, 16) not in dates
    assert dt.date(2022, 11, 9) in dates and dt.date(2022, 12, 14) in dates
    assert dt.date(2022, 12, 21) in dates  # explicit, in the Christmas holidays
    assert dt.date(2022, 11, 2) not in dates  # Toussaint holidays
    assert report.created["sessions"] == len(dates)
    part = SessionPart.objects.filter(part="meal").first()
    assert part.capacity == 12
    window = RegistrationWindow.objects.get()
    assert window.opens_at == dt.datetime(2022, 10, 15, 12, 30, tzinfo=PARIS)
    assert window.residents_open_at == dt.datetime(2022, 10, 14, 12, 30, tzinfo=PARIS)
    assert Activity.objects.get().cancellation_rule == "sunday of previous week at 23:59"
    counts = [m.objects.count() for m in (Session, SessionPart, Unit, Site, RegistrationWindow)]
    again = load_config(MINIMAL, "test.yaml", actor=CLI, now=NOW)
    assert not again.changed
    assert [m.objects.count() for m in (Session, SessionPart, Unit, Site, RegistrationWindow)] == counts


def test_a_closure_added_later_closes_the_existing_sessions(town):
    load_config(MINIMAL, "test.yaml", actor=CLI, now=NOW)
    report = load_config(MINIMAL.replace("closures: [2022-11-16]", "closures: [2022-11-16, 2022-11-23]"),
                         "test.yaml", actor=CLI, now=NOW)
    assert report.updated == {"sessions closed": 1}
    assert list(Session.objects.filter(closed=True).values_list("date", flat=True)) == [dt.date(2022, 11, 23)]


def test_changing_a_capacity_updates_it_but_never_below_the_places_taken(town):
    load_config(MINIMAL, "test.yaml", actor=CLI, now=NOW)
    report = load_config(MINIMAL.replace("meal: 12", "meal: 15"), "test.yaml", actor=CLI, now=NOW)
    assert report.updated["session parts"] == Session.objects.count()
    SessionPart.objects.filter(part="meal").update(booked=14)
    with pytest.raises(ConfigError) as e:
        load_config(MINIMAL.replace("meal: 12", "meal: 13"), "test.yaml", actor=CLI, now=NOW)
    assert "test.yaml:20: activities[0].sites[0].capacity" in str(e.value)
    assert "fewer than the 14 already taken" in str(e.value)
    assert set(SessionPart.objects.filter(part="meal").values_list("capacity", flat=True)) == {15}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("sunday before at 23:59", "sunday beforee"), "test.yaml:16: activities[0].booking_rule: 'sunday beforee'"),
        (("- site: centre", "- site: ailleurs"), "test.yaml:19: activities[0].sites[0].site: unknown site 'ailleurs'"),
        (("parts: [morning, meal, afternoon]\n    booking", "parts: [morning, supper]\n    booking"),
         "test.yaml:15: activities[0].units[0].parts: 'supper' is not a part of the activity"),
        (("from: 2022-11-01", "from: 2022-13-01"), "test.yaml:25: activities[0].calendar[0].from: expected a date"),
        (("zone: C", "zone: Q"), "test.yaml:24: activities[0].calendar[0].zone: unknown school zone 'Q'"),
        (("kind: leisure_wednesday", "kind: pool"), "test.yaml:10: activities[0].kind: 'pool' is not one of"),
        (("12:30 Europe/Paris", "12:30 Mars/Olympus"), "test.yaml:32: activities[0].windows[0].opens_at: unknown time zone"),
        (("    name: Centre\n", "    name: Centre\n    colour: red\n"), "test.yaml:7: sites[0].colour: unknown field"),
        (("in: term", "in: summer"), "test.yaml:23: activities[0].calendar[0].in: 'summer' is not one of"),
        (("from: 2022-11-01\n        to: 2022-12-31", "from: 2022-11-01\n        to: 2031-12-31"),
         "activities[0].calendar[0].to: no school holiday data"),
    ],
)
def test_errors_name_file_line_and_field_and_write_nothing(town, change, expected):
    text = MINIMAL.replace(*change)
    assert text != MINIMAL
    with translation.override("en"), pytest.raises(ConfigError) as e:
        load_config(text, "test.yaml", actor=CLI, now=NOW)
    assert expected in str(e.value)
    assert not Session.objects.exists() and not Activity.objects.exists()


def test_invalid_yaml_and_missing_organisation(town):
    with pytest.raises(ConfigError) as e:
        parse_config("format: guichet-bookings/1\nportal: [", "bad.yaml")
    assert str(e.value).startswith("bad.yaml:")
    with pytest.raises(ConfigError) as e:
        load_config(MINIMAL.replace("organisation: ville", "organisation: carene"), "test.yaml", actor=CLI, now=NOW)
    assert "test.yaml:3: organisation: no organisation 'carene'" in str(e.value)


def test_cli_check_writes_nothing_and_load_reports(town, tmp_path):
    path = tmp_path / "activites.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    out = StringIO()
    call_command("bookings", "check", str(path), stdout=out)
    assert "activites.yaml is valid" in out.getvalue()
    assert not Session.objects.exists()
    call_command("bookings", "load", str(path), stdout=out)
    assert Session.objects.exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("zone: C", "zone: Q"), encoding="utf-8")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("bookings", "load", str(bad), stdout=out, stderr=err)
    assert "bad.yaml:24: activities[0].calendar[0].zone" in err.getvalue()


# --- the seeds, end to end ---------------------------------------------------------------------------


@pytest.fixture
def seeds(db):
    for slug in ("maisons-alfort", "saint-nazaire"):
        portal = Portal.objects.create(slug=slug, name=slug)
        Organisation.objects.create(portal=portal, slug="ville", name=f"Ville {slug}")
    for path in demo_paths():
        load_config(path.read_text(encoding="utf-8"), path.name, actor=CLI, now=NOW, demo_password="not-used-here")


def _family(portal):
    household = Household.objects.get(organisation__portal__slug=portal)
    return household, list(Child.objects.filter(household=household).order_by("birth_date"))


def _submit(household, child, session, unit, key):
    return services.basket_submit(
        household=household, items=[{"child": child.pk, "session": session.pk, "unit": unit}], mode="partial",
        actor=Actor.for_user(Guardian.objects.filter(household=household).first().user), now=timezone.now(),
        idempotency_key=key,
    )


def _outcome(basket):
    item = basket.result["items"][0]
    return item["outcome"], item["code"]


def test_seed_maisons_alfort_wednesday_half_day_until_the_sunday_before(seeds):
    household, (lea, noe) = _family("maisons-alfort")
    session = Session.objects.get(activity__slug="mercredis", site__slug="al-centre", date=dt.date(2022, 12, 7))
    with time_machine.travel(dt.datetime(2022, 12, 4, 23, 59, 30, tzinfo=PARIS), tick=False):
        assert _outcome(_submit(household, lea, session, "matin-repas", "a")) == ("booked", "booked")
    with time_machine.travel(dt.datetime(2022, 12, 5, 0, 0, tzinfo=PARIS), tick=False):
        basket = _submit(household, noe, session, "repas-apres-midi", "b")
        assert _outcome(basket) == ("refused", "deadline_passed")
        assert re.search(r"(Sunday|dimanche) 4 (December|décembre)", basket.result["items"][0]["message"])


def test_seed_maisons_alfort_holidays_full_days_only_until_the_tuesday_before_the_week(seeds):
    household, (lea, _noe) = _family("maisons-alfort")
    # Christmas holidays 2022, zone C; Monday 2 January 2023 is after the year boundary.
    session = Session.objects.filter(activity__slug="vacances", site__slug="al-centre",
                                     date__gte=dt.date(2023, 1, 1)).order_by("date").first()
    monday = session.date - dt.timedelta(days=session.date.weekday())
    tuesday_before = monday - dt.timedelta(days=6)
    assert Unit.objects.filter(activity__slug="vacances").count() == 1
    with time_machine.travel(dt.datetime.combine(tuesday_before, dt.time(23, 59), tzinfo=PARIS), tick=False):
        basket = _submit(household, lea, session, "matin-repas", "half")
        assert _outcome(basket) == ("refused", "unit_not_offered")
        assert _outcome(_submit(household, lea, session, "journee", "full")) == ("booked", "booked")
    later = Session.objects.filter(activity__slug="vacances", site__slug="al-centre", date__gt=session.date,
                                   date__lte=session.date + dt.timedelta(days=4)).first()
    if later is not None:
        with time_machine.travel(dt.datetime.combine(tuesday_before + dt.timedelta(days=1), dt.time(0, 0),
                                                     tzinfo=PARIS), tick=False):
            assert _outcome(_submit(household, lea, later, "journee", "late")) == ("refused", "deadline_passed")


def test_seed_maisons_alfort_cancel_late_is_billed_unless_a_certificate(seeds):
    household, (lea, noe) = _family("maisons-alfort")
    session = Session.objects.get(activity__slug="mercredis", site__slug="al-centre", date=dt.date(2022, 12, 14))
    with time_machine.travel(dt.datetime(2022, 12, 1, 10, 0, tzinfo=PARIS), tick=False):
        _submit(household, lea, session, "journee", "l")
        _submit(household, noe, session, "journee", "n")
    on_time, late = Booking.objects.filter(session=session).order_by("child__birth_date")
    with time_machine.travel(dt.datetime(2022, 12, 11, 23, 59, tzinfo=PARIS), tick=False):
        on_time = services.booking_cancel(booking=on_time, actor=CLI, now=timezone.now())
    with time_machine.travel(dt.datetime(2022, 12, 12, 0, 0, tzinfo=PARIS), tick=False):
        late = services.booking_cancel(booking=late, actor=CLI, now=timezone.now())
    assert not on_time.late and late.late
    assert selectors.billable(late, timezone.now()) and not selectors.billable(on_time, timezone.now())
    with time_machine.travel(dt.datetime(2022, 12, 15, 9, 0, tzinfo=PARIS), tick=False):
        services.justification_record(booking=late, kind="medical", document=None, actor=CLI, now=timezone.now())
    assert not selectors.billable(late, timezone.now())


def test_seed_saint_nazaire_window_opens_4_june_at_12_30_and_cancel_until_15_days_before(seeds):
    household, (ines, tom) = _family("saint-nazaire")
    session = Session.objects.get(activity__slug="ete", site__slug="cl-plage", date=dt.date(2024, 7, 22))
    with time_machine.travel(dt.datetime(2024, 6, 4, 12, 29, 59, tzinfo=PARIS), tick=False):
        basket = _submit(household, ines, session, "journee", "early")
        assert _outcome(basket) == ("refused", "window_not_open")
        assert "4 juin 2024 à 12 h 30" in basket.result["items"][0]["message"]
    with time_machine.travel(dt.datetime(2024, 6, 4, 12, 30, tzinfo=PARIS), tick=False):
        assert _outcome(_submit(household, ines, session, "journee", "open")) == ("booked", "booked")
        assert _outcome(_submit(household, tom, session, "journee", "open2")) == ("booked", "booked")
    first, second = Booking.objects.filter(session=session).order_by("pk")
    with time_machine.travel(dt.datetime(2024, 7, 7, 23, 59, tzinfo=PARIS), tick=False):
        assert not services.booking_cancel(booking=first, actor=CLI, now=timezone.now()).late
    with time_machine.travel(dt.datetime(2024, 7, 8, 0, 0, tzinfo=PARIS), tick=False):
        second = services.booking_cancel(booking=second, actor=CLI, now=timezone.now())
        assert second.late and selectors.billable(second, timezone.now())


def test_seed_calendar_shows_deadlines_in_words(seeds):
    household, _children = _family("maisons-alfort")
    with time_machine.travel(dt.datetime(2022, 11, 28, 9, 0, tzinfo=PARIS), tick=False):
        cal = selectors.household_calendar(household=household, date_from=dt.date(2022, 12, 1),
                                           date_to=dt.date(2022, 12, 31), now=timezone.now())
    cell = next(c for c in cal[0].cells if c.date == dt.date(2022, 12, 7) and c.session.site.slug == "al-centre")
    assert cell.state == "free"
    with translation.override("en"):
        cal = selectors.household_calendar(household=household, date_from=dt.date(2022, 12, 7),
                                           date_to=dt.date(2022, 12, 7), now=dt.datetime(2022, 11, 28, tzinfo=PARIS))
    cell = next(c for c in cal[0].cells if c.session.site.slug == "al-centre")
    assert cell.booking_deadline_text == "bookable until Sunday 4 December, 23:59"
    assert cell.cancellation_deadline_text == "cancellable until Sunday 4 December, 23:59"
