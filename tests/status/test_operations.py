"""The operations vocabulary: validated without the database, every error names its field."""

import datetime as dt

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from guichet.status.operations import MAX_STR, MAX_TEXT, SPEC, OpError, validate_operations

INCIDENT = {"op": "incident.set", "organisation": "ville", "slug": "cyberattaque",
            "title": "Cyberattaque", "started_at": "2024-05-22T09:00:00+02:00"}
AVAILABILITY = {"op": "availability.set", "incident": "cyberattaque", "service": "etat-civil",
                "procedure": "acte-naissance", "channel": "online", "state": "suspended",
                "instead": "Écrire au service", "since": "2024-05-22", "contacts": ["standard"]}


def errors_of(ops) -> dict[str, str]:
    cleaned, errors = validate_operations(ops)
    return {e.path: e.message for e in errors}


def test_valid_operations_pass_and_are_cleaned():
    cleaned, errors = validate_operations([INCIDENT, AVAILABILITY, {"op": "portal.set", "name": "  Ville  "}])
    assert errors == []
    assert cleaned[0]["started_at"] == "2024-05-22T09:00:00+02:00"
    assert cleaned[1]["since"] == "2024-05-22"
    assert cleaned[2]["name"] == "Ville"  # trimmed


def test_dates_and_datetimes_from_yaml_objects_are_accepted():
    op = {**INCIDENT, "started_at": dt.datetime(2024, 5, 22, 9, tzinfo=dt.UTC)}
    cleaned, errors = validate_operations([op, {**AVAILABILITY, "since": dt.date(2024, 5, 22)}])
    assert errors == []
    assert cleaned[0]["started_at"] == "2024-05-22T09:00:00+00:00"
    assert cleaned[1]["since"] == "2024-05-22"


def test_not_a_list():
    assert validate_operations({"op": "portal.set"}) == ([], [OpError("operations", "expected a list of operations")])


@pytest.mark.parametrize("op", ["portal.set", 3, None, {"name": "x"}])
def test_an_operation_must_be_an_object_with_op(op):
    assert errors_of([INCIDENT, op]) == {"operations[1]": "expected an object with an 'op' field"}


def test_unknown_operation():
    assert errors_of([{"op": "incident.delete", "incident": "x"}]) == {
        "operations[0].op": "unknown operation 'incident.delete'"
    }


def test_unknown_field():
    assert errors_of([{**INCIDENT, "colour": "red"}]) == {"operations[0].colour": "unknown field for incident.set"}


def test_required_fields():
    errs = errors_of([INCIDENT, {"op": "availability.set", "incident": "cyberattaque", "state": ""}])
    assert errs == {
        "operations[1].service": "required",
        "operations[1].procedure": "required",
        "operations[1].state": "required",
    }


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("state", "broken", "'broken' is not one of: normal, degraded, suspended"),
        ("channel", "fax", "'fax' is not one of"),
        ("since", "22/05/2024", "'22/05/2024' is not a date (YYYY-MM-DD)"),
        ("since", "2024-02-30", "is not a date"),
        ("since", dt.datetime(2024, 5, 22, 9, tzinfo=dt.UTC), "expected a date (YYYY-MM-DD), not a date and time"),
        ("contacts", "standard", "expected a list of contact keys"),
        ("contacts", ["standard", 3], "expected a list of contact keys"),
        ("position", -1, "expected a whole number"),
        ("position", True, "expected a whole number"),
        ("position", "3", "expected a whole number"),
        ("service", "État civil", "is not an identifier"),
        ("service", ["etat-civil"], "expected text"),
        ("explanation", True, "expected text"),
    ],
)
def test_bad_values_name_the_field(field, value, words):
    errs = errors_of([INCIDENT, {**AVAILABILITY, field: value}])
    assert list(errs) == [f"operations[1].{field}"]
    assert words in errs[f"operations[1].{field}"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2024-05-22T09:00:00", "give the offset from UTC"),
        (dt.datetime(2024, 5, 22, 9, 0), "give the offset from UTC"),  # noqa: DTZ001 - the point
        ("2024-05-22", "give the offset from UTC"),
        (dt.date(2024, 5, 22), "expected a date and time with its offset"),
        ("mercredi matin", "is not a date and time"),
    ],
)
def test_naive_or_bad_datetimes_are_rejected(value, words):
    errs = errors_of([{**INCIDENT, "started_at": value}])
    assert list(errs) == ["operations[0].started_at"]
    assert words in errs["operations[0].started_at"]


def test_too_long_texts():
    errs = errors_of([{**INCIDENT, "title": "x" * (MAX_STR + 1), "summary": "y" * (MAX_TEXT + 1)}])
    assert errs["operations[0].title"] == f"too long ({MAX_STR + 1} characters, at most {MAX_STR})"
    assert errs["operations[0].summary"] == f"too long ({MAX_TEXT + 1} characters, at most {MAX_TEXT})"
    assert errors_of([{**INCIDENT, "title": "x" * MAX_STR, "summary": "y" * MAX_TEXT}]) == {}


def test_one_line_fields_refuse_line_breaks():
    assert errors_of([{**INCIDENT, "title": "Cyber\nattaque"}]) == {"operations[0].title": "must fit on one line"}
    assert errors_of([{**INCIDENT, "summary": "Ligne 1\nLigne 2"}]) == {}


def test_bool_fields():
    assert errors_of([{"op": "portal.set", "name": "Ville", "requires_approval": "yes"}]) == {
        "operations[0].requires_approval": "expected true or false"
    }


def test_hours_errors_name_the_nested_field():
    op = {"op": "contact.set", "organisation": "ville", "key": "standard", "label": "Standard",
          "kind": "phone", "value": "02 40 00 40 00",
          "hours": [{"days": "mon-fri", "slots": ["08:30-11:00"]}, {"days": "sat", "slots": ["8h-11h"]}]}
    with translation.override("en"):
        assert errors_of([op]) == {"operations[0].hours[1].slots[0]": "'8h-11h' is not a slot like 08:30-11:00"}


def test_target_rules():
    base = {"op": "target.set", "incident": "cyberattaque", "service": "etat-civil"}
    assert errors_of([{**base, "precision": "exact"}]) == {"operations[0].earliest": "an exact target needs its date"}
    assert errors_of([{**base, "precision": "exact", "earliest": "2024-06-03"}]) == {}
    assert errors_of([{**base, "precision": "period", "earliest": "2024-07-01", "latest": "2024-06-01",
                       "text": "pendant l'été"}]) == {"operations[0].latest": "ends before it starts"}
    assert "operations[0].precision" in errors_of([{**base, "precision": "soon"}])


def test_incident_ends_after_it_starts():
    assert errors_of([{**INCIDENT, "ended_at": "2024-05-21T09:00:00+02:00"}]) == {
        "operations[0].ended_at": "ends before it starts"
    }


def test_every_error_of_a_batch_is_reported_at_once():
    errs = errors_of([{**INCIDENT, "title": ""}, {"op": "nope"}, {**AVAILABILITY, "state": "x", "since": "x"}])
    assert set(errs) == {"operations[0].title", "operations[1].op", "operations[2].state", "operations[2].since"}


# --- junk never crashes -------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
    st.dates(), st.datetimes(), st.datetimes(timezones=st.just(dt.UTC)),
)
junk = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
op_names = st.sampled_from(sorted(SPEC)) | st.text(max_size=12)


@st.composite
def plausible_operation(draw):
    """Right operation names and field names, random values: the hard case for the cleaner."""
    name = draw(op_names)
    fields = sorted(SPEC.get(name, {})) or ["x"]
    op = draw(st.dictionaries(st.sampled_from(fields) | st.text(max_size=8), junk, max_size=8))
    op["op"] = draw(st.just(name) | junk)
    return op


@settings(max_examples=400, deadline=None)
@given(st.one_of(junk, st.lists(st.one_of(junk, plausible_operation()), max_size=6)))
def test_random_junk_returns_errors_never_raises(ops):
    cleaned, errors = validate_operations(ops)
    assert isinstance(cleaned, list)
    for e in errors:
        assert isinstance(e, OpError)
        assert e.path.startswith("operations")
        assert e.message


@settings(max_examples=200, deadline=None)
@given(st.lists(plausible_operation(), min_size=1, max_size=4))
def test_errors_point_at_an_operation_that_exists(ops):
    _cleaned, errors = validate_operations(ops)
    for e in errors:
        index = int(e.path.split("[", 1)[1].split("]", 1)[0])
        assert 0 <= index < len(ops)


@pytest.mark.parametrize("name", [["incident.set"], {"a": 1}, None, 3.5])
def test_an_op_name_that_is_not_text_is_an_unknown_operation(name):
    assert list(errors_of([{"op": name}])) == ["operations[0].op"]
