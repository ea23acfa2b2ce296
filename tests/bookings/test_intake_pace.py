"""When a family is told to come back (``Retry-After`` of a 202): about when its basket's turn
comes, from the line ahead of it and the duration of a drain round, never from the arrival rate."""

from __future__ import annotations

import pytest

from guichet.bookings import intake, services
from guichet.bookings.models import Basket

ORG = 987_654


@pytest.fixture(autouse=True)
def _clean_pace():
    yield
    intake._Pace.head.pop(ORG, None)
    intake._Pace.round_seconds.pop(ORG, None)


def basket(pk: int) -> Basket:
    return Basket(pk=pk, organisation_id=ORG)


def test_nothing_seen_yet_or_already_passed_says_one_second():
    assert intake.retry_after(basket(10)) == intake.RETRY_AFTER
    intake._Pace.saw(ORG, 100, seconds=0.3)
    assert intake.retry_after(basket(99)) == intake.RETRY_AFTER  # behind the head: answered


def test_the_line_ahead_counts_in_drain_rounds():
    intake._Pace.saw(ORG, 100, seconds=0.5)
    assert intake.retry_after(basket(150)) == 1  # this round or the next: 2 x 0.5 s
    four_rounds_ahead = 100 + 3 * services.DRAIN_BATCH  # 3 full rounds ahead, then its own
    assert intake.retry_after(basket(four_rounds_ahead - 1)) == 2  # (3 + 1) x 0.5 s
    assert intake.retry_after(basket(four_rounds_ahead)) == 3  # (4 + 1) x 0.5 s = 2.5 s


def test_small_rounds_are_not_a_slow_drain():
    # A round of six baskets taking 0.3 s (few had arrived): the next family is told 1 s, not
    # "6 baskets per 0.3 s = 20/s, 200 ahead = 10 s".
    intake._Pace.saw(ORG, 1, seconds=0.3)
    assert intake.retry_after(basket(200)) == 1


def test_slow_rounds_are_capped():
    intake._Pace.saw(ORG, 1, seconds=30.0)
    assert intake.retry_after(basket(2)) == intake.MAX_RETRY_AFTER
    intake._Pace.saw(ORG, None)
    assert intake.retry_after(basket(2)) == intake.RETRY_AFTER  # the line is empty
