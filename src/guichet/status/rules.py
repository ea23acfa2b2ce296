"""Pure status rules: severity ordering and the roll-up of many rows into one state."""

from __future__ import annotations

from collections.abc import Iterable

NORMAL, DEGRADED, SUSPENDED = "normal", "degraded", "suspended"
SEVERITY = {NORMAL: 0, DEGRADED: 1, SUSPENDED: 2}


def rollup(states: Iterable[str]) -> str:
    """The overall state of a service from its procedures' channel rows.

    No row: the service is not listed, so it works normally. Every row suspended: suspended.
    Anything suspended or disrupted: disrupted (part of it still works). Otherwise normal.
    """
    states = list(states)
    if not states:
        return NORMAL
    for s in states:
        if s not in SEVERITY:
            raise ValueError(f"unknown state {s!r}")
    if all(s == SUSPENDED for s in states):
        return SUSPENDED
    if any(s != NORMAL for s in states):
        return DEGRADED
    return NORMAL


def worst(states: Iterable[str]) -> str:
    return max(states, key=SEVERITY.__getitem__, default=NORMAL)
