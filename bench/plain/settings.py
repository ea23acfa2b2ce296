"""Guichet's settings (same middleware, database, sessions, auth), with the plain view's URLs.

Used only by the benchmark's plain-Django server (``bench.plain.run``): nothing here is
reachable from Guichet's own URL configuration.
"""

from guichet.settings import *  # noqa: F403

ROOT_URLCONF = "bench.plain.urls"
