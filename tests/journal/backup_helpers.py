"""An empty database to restore into, of the same kind as the one the suite runs on."""

import contextlib
import uuid

from django.db import connection

from guichet.journal.backup import Database


@contextlib.contextmanager
def empty_target(tmp_path):
    """Yield ``(Database, url)`` of a new, empty database; dropped afterwards (PostgreSQL)."""
    if connection.vendor == "sqlite":
        path = tmp_path / f"restored-{uuid.uuid4().hex[:8]}.sqlite3"
        url = f"sqlite:///{path}"
        yield Database.from_url(url), url
        return
    import psycopg

    s = connection.settings_dict
    name = f"{s['NAME']}_restore_{uuid.uuid4().hex[:8]}"
    params = {"host": s.get("HOST") or None, "port": s.get("PORT") or None, "user": s.get("USER") or None,
              "password": s.get("PASSWORD") or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    auth = s.get("USER") or "postgres"
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    url = f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{name}"
    try:
        yield Database.from_url(url), url
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
