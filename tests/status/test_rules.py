"""A service's overall state is derived from its rows, never typed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guichet.status.models import State
from guichet.status.rules import DEGRADED, NORMAL, SEVERITY, SUSPENDED, rollup, worst

states = st.sampled_from([NORMAL, DEGRADED, SUSPENDED])


def test_the_rule_vocabulary_is_the_models():
    assert set(SEVERITY) == set(State.values)


def test_a_service_with_no_row_works_normally():
    assert rollup([]) == NORMAL


@pytest.mark.parametrize(
    ("rows", "overall"),
    [
        ([NORMAL], NORMAL),
        ([NORMAL, NORMAL], NORMAL),
        ([SUSPENDED], SUSPENDED),
        ([SUSPENDED, SUSPENDED, SUSPENDED], SUSPENDED),
        ([DEGRADED], DEGRADED),
        ([SUSPENDED, NORMAL], DEGRADED),  # the counter works, the online portal does not
        ([SUSPENDED, DEGRADED], DEGRADED),
        ([NORMAL, DEGRADED], DEGRADED),
    ],
)
def test_rollup(rows, overall):
    assert rollup(rows) == overall


def test_unknown_state_is_refused():
    with pytest.raises(ValueError, match="unknown state 'broken'"):
        rollup([NORMAL, "broken"])


def test_rollup_accepts_any_iterable():
    assert rollup(s for s in [SUSPENDED, SUSPENDED]) == SUSPENDED


@given(st.lists(states, min_size=1))
def test_rollup_properties(rows):
    overall = rollup(rows)
    assert overall in SEVERITY
    assert (overall == SUSPENDED) == all(r == SUSPENDED for r in rows)
    assert (overall == NORMAL) == all(r == NORMAL for r in rows)
    # Never worse than the worst row, never better than the best.
    assert SEVERITY[min(rows, key=SEVERITY.get)] <= SEVERITY[overall] <= SEVERITY[worst(rows)]
    # Order does not matter.
    assert rollup(list(reversed(rows))) == overall


@given(st.lists(states, min_size=1))
def test_adding_a_normal_row_never_makes_things_worse(rows):
    assert SEVERITY[rollup([*rows, NORMAL])] <= max(SEVERITY[rollup(rows)], SEVERITY[DEGRADED])
    # And suspending one more channel never makes a suspended service look better.
    if rollup(rows) == SUSPENDED:
        assert rollup([*rows, SUSPENDED]) == SUSPENDED


def test_worst():
    assert worst([]) == NORMAL
    assert worst([NORMAL, SUSPENDED, DEGRADED]) == SUSPENDED
