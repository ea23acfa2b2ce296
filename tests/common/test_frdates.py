import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import translation

from guichet.common.frdates import format_date_fr, format_datetime_fr, format_time_fr

UTC = dt.UTC


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.time(8, 30), "8 h 30"),
        (dt.time(9, 0), "9 h"),
        (dt.time(0, 5), "0 h 05"),
        (510, "8 h 30"),
        (17 * 60, "17 h"),
        # 07:30 UTC in winter is 8 h 30 in Paris; 07:30 UTC in summer is 9 h 30.
        (dt.datetime(2026, 1, 5, 7, 30, tzinfo=UTC), "8 h 30"),
        (dt.datetime(2026, 7, 5, 7, 30, tzinfo=UTC), "9 h 30"),
    ],
)
def test_time_in_french(value, text):
    with translation.override("fr"):
        assert format_time_fr(value) == text


def test_time_in_english():
    with translation.override("en"):
        assert format_time_fr(dt.time(9, 0)) == "9:00"
        assert format_time_fr(510) == "8:30"
    assert format_time_fr(510, lang="en") == "8:30"


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (dt.date(2026, 3, 1), {}, "1er mars 2026"),
        (dt.date(2026, 3, 2), {}, "2 mars 2026"),
        (dt.date(2026, 8, 15), {"year": False}, "15 août"),
        (dt.date(2026, 6, 1), {"weekday": True, "year": False}, "lundi 1er juin"),
        # 23:30 UTC on 28 February is already 1 March in Paris.
        (dt.datetime(2026, 2, 28, 23, 30, tzinfo=UTC), {}, "1er mars 2026"),
    ],
)
def test_date_in_french(value, kwargs, text):
    with translation.override("fr"):
        assert format_date_fr(value, **kwargs) == text


def test_date_in_english():
    with translation.override("en"):
        assert format_date_fr(dt.date(2026, 3, 1)) == "1 March 2026"
        assert format_date_fr(dt.date(2026, 6, 1), weekday=True) == "Monday 1 June 2026"


def test_datetime_both_languages_in_paris_time():
    moment = dt.datetime(2026, 3, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert format_datetime_fr(moment, lang="fr") == "1er mars 2026 à 8 h"
    assert format_datetime_fr(moment.astimezone(UTC), lang="en") == "1 March 2026, 8:00"


def test_template_filters():
    template = Template(
        "{% load frdates %}{{ d|date_fr }}|{{ d|date_fr:'weekday noyear' }}|{{ t|time_fr }}|"
        "{{ m|datetime_fr }}|{{ none|date_fr }}"
    )
    context = Context(
        {
            "d": dt.date(2026, 3, 1),
            "t": dt.time(9, 0),
            "m": dt.datetime(2026, 3, 1, 7, 30, tzinfo=UTC),
            "none": None,
        }
    )
    with translation.override("fr"):
        assert (
            template.render(context)
            == "1er mars 2026|dimanche 1er mars|9 h|1er mars 2026 à 8 h 30|"
        )
