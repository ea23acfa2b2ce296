import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from guichet.common.actor import Actor

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def cli_actor():
    return Actor.cli()


@pytest.fixture
def paris():
    def make(*args):
        return dt.datetime(*args, tzinfo=PARIS)

    return make
