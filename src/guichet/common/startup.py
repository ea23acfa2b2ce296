"""What a long-running process does once it has started (web server workers, the drainer)."""

from __future__ import annotations

import gc

# Container objects allocated, net, before the collector looks at the youngest generation
# (CPython's default: 700). A request of the opening rush allocates a few thousand; at 700 a web
# worker ran about one collection every 3.5 requests, 0.21 ms of CPU per request in all; at
# 20,000, 0.08 ms (docs/benchmarks.md). The memory it lets wait is a few megabytes at most.
YOUNG_THRESHOLD = 20_000


def tune_garbage_collector() -> int:
    """For a server process, once started:

    - moves every object alive now (Django's settings, models, URL patterns, translations: over
      a hundred thousand, never garbage) out of the collector's reach, as CPython's
      documentation advises for servers (``gc.freeze``): each full collection would otherwise
      scan them all again, about a fifth of the drainer's CPU during an opening rush;
    - collects the youngest generation less often (``YOUNG_THRESHOLD``).

    Garbage is still collected. Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    _young, *older = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *older)
    return gc.get_freeze_count()
