"""What a long-running process does once it has started (web server workers, the drainer)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Moves every object alive now (Django's settings, models, URL patterns, translations: some
    hundred thousand, never garbage) out of the garbage collector's reach, as CPython's
    documentation advises for servers (``gc.freeze``). Each full collection would otherwise scan
    them all again: about a fifth of the drainer's CPU during an opening rush
    (docs/benchmarks.md). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
