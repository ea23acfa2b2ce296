"""A server process moves the objects of its start-up out of the garbage collector's reach
and collects its youngest objects less often (``common.startup``): the collector no longer
scans the start-up objects at every full collection, and still collects what requests leave
behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROBE = """
import gc, sys
import guichet.wsgi
frozen = gc.get_freeze_count()
young = gc.get_threshold()[0]
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle, garbage once dropped
del a, b
print(frozen, young, gc.collect())
"""


def test_a_web_worker_freezes_its_start_up_objects_and_still_collects_garbage():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "guichet.settings", "GUICHET_INSECURE_DEV_KEY": "1",
           "PYTHONPATH": str(SRC)}
    env.pop("GUICHET_DB_POOL", None)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frozen, young, collected = map(int, out.stdout.split())
    assert frozen > 50_000  # Django, the apps, their models and translations
    assert young == 20_000  # the youngest generation collected less often than CPython's 700
    assert collected >= 2
