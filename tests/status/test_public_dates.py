import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import translation

from guichet.status.templatetags.status_public import format_datetime

PARIS = ZoneInfo("Europe/Paris")


def test_a_date_given_without_time_is_shown_without_a_made_up_midnight():
    with translation.override("fr"):
        assert format_datetime(dt.datetime(2022, 12, 5, tzinfo=PARIS)) == "5 décembre 2022"
        # Midnight in Paris is 23:00 UTC the day before: still the 5th, still no time.
        assert format_datetime(dt.datetime(2022, 12, 4, 23, 0, tzinfo=dt.UTC)) == "5 décembre 2022"


def test_a_real_time_is_shown_in_paris_time():
    with translation.override("fr"):
        assert format_datetime(dt.datetime(2024, 5, 21, 15, 0, tzinfo=dt.UTC)) == "21 mai 2024 à 17 h"
    with translation.override("en"):
        assert format_datetime(dt.datetime(2024, 5, 21, 15, 0, tzinfo=dt.UTC)) == "21 May 2024, 17:00"
