"""The WSGI application (gunicorn ``guichet.wsgi:application``).

The application server runs no system checks, so the one check a page cannot do without is made
here, at start-up: without a readable field key the first page that shows an IBAN or a quotient
would be a server error. The process stops instead, saying what is missing and how to fix it.
"""

import os
import sys

from django.core.wsgi import get_wsgi_application

from guichet.common.startup import tune_garbage_collector

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guichet.settings")
application = get_wsgi_application()


def _require_field_key() -> None:
    from guichet.common import crypto

    try:
        crypto.keyring()
    except crypto.FieldKeyError as e:
        sys.stderr.write(f"guichet: cannot start: {e}.\n{crypto.MISSING_KEY_HINT}\n")
        raise SystemExit(3) from None


def _require_pool_under_gevent() -> None:
    """gevent workers (docs/operations.md) run each request in a greenlet of its own, and each
    greenlet has a database connection of its own: without a pool every request would open one
    (and ``CONN_MAX_AGE`` keep it), and an opening rush would exhaust PostgreSQL's connections."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return
    from django.db import connection

    from guichet.common import dbpool

    if connection.vendor == "postgresql" and not dbpool.pooled():
        sys.stderr.write(
            "guichet: cannot start: gevent workers need a connection pool on PostgreSQL: set GUICHET_DB_POOL "
            "(connections per process, e.g. 20; docs/operations.md).\n"
        )
        raise SystemExit(3)


_require_field_key()
_require_pool_under_gevent()
# Each worker imports this module after gunicorn forks it (no --preload, docs/operations.md).
tune_garbage_collector()
