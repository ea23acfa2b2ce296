"""Settings come from the environment; the embedded database is configured correctly.

Most checks import the settings in a fresh interpreter with a controlled environment, so they
hold whatever database the test run itself uses.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

SRC = str(Path(__file__).resolve().parents[1] / "src")
STRIPPED = ("DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "GUICHET_INSECURE_DEV_KEY",
            "GUICHET_DATA_DIR", "DJANGO_SETTINGS_MODULE", "GUICHET_DISPLAY_TIME_ZONE", "SECURE_COOKIES",
            "GUICHET_DB_POOL", "GUICHET_DB_PREPARED")


def run(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    base.update(PYTHONPATH=SRC, DJANGO_SETTINGS_MODULE="guichet.settings", GUICHET_DATA_DIR=str(tmp_path))
    base.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=base, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def settings_json(tmp_path, expr: str, **env):
    r = run(f"import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({expr}, default=str))",
            tmp_path, **env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- SECRET_KEY and DEBUG -----------------------------------------------------------------


def test_secret_key_is_required_without_debug(tmp_path):
    r = run("import guichet.settings", tmp_path)
    assert r.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set." in r.stderr
    assert "DEBUG=1 for development" in r.stderr


def test_secret_key_from_the_environment(tmp_path):
    got = settings_json(tmp_path, '[s.SECRET_KEY, s.DEBUG, s.SESSION_COOKIE_SECURE]', SECRET_KEY="k" * 50)
    assert got == ["k" * 50, False, True]


def test_debug_gives_a_development_key_and_plain_cookies(tmp_path):
    key, debug, secure = settings_json(tmp_path, '[s.SECRET_KEY, s.DEBUG, s.SESSION_COOKIE_SECURE]', DEBUG="1")
    assert debug is True and secure is False
    assert "insecure" in key


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("on", True),
                                                 ("0", False), ("false", False), ("", False)])
def test_debug_values(tmp_path, value, expected):
    assert settings_json(tmp_path, "s.DEBUG", DEBUG=value, SECRET_KEY="k" * 50) is expected


def test_allowed_hosts_from_the_environment(tmp_path):
    hosts = settings_json(tmp_path, "s.ALLOWED_HOSTS", SECRET_KEY="k" * 50,
                          ALLOWED_HOSTS=" guichet.example.fr, www.guichet.example.fr ,")
    assert hosts == ["guichet.example.fr", "www.guichet.example.fr"]


# --- the database ---------------------------------------------------------------------------


def test_sqlite_by_default_in_the_data_directory(tmp_path):
    db = settings_json(tmp_path, 's.DATABASES["default"]', DEBUG="1")
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "guichet.sqlite3")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_sqlite_file_is_in_wal_mode_with_immediate_transactions_and_a_busy_timeout(tmp_path):
    code = """
        import json, sqlite3, django
        django.setup()
        from django.db import connection, transaction
        from django.conf import settings
        out = {}
        with connection.cursor() as c:
            for pragma in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous"):
                c.execute(f"PRAGMA {pragma}")
                out[pragma] = c.fetchone()[0]
        # IMMEDIATE: opening a transaction takes the write lock at once, so another writer is
        # refused straight away instead of failing later in the middle of its work.
        other = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=0, isolation_level=None)
        with transaction.atomic():
            try:
                other.execute("BEGIN IMMEDIATE")
                out["second_writer"] = "got the lock"
            except sqlite3.OperationalError as e:
                out["second_writer"] = str(e)
            # WAL: readers are not blocked by the writer.
            out["reader"] = other.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] >= 0
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        print(json.dumps(out))
    """
    r = run(code, tmp_path, DEBUG="1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["journal_mode"] == "wal"
    assert out["busy_timeout"] == 20000
    assert out["foreign_keys"] == 1
    assert out["synchronous"] == 2  # FULL
    assert out["second_writer"] == "database is locked"
    assert out["reader"] is True
    assert (tmp_path / "guichet.sqlite3").exists()


def test_database_url_is_honoured(tmp_path):
    db = settings_json(tmp_path, 's.DATABASES["default"]', DEBUG="1",
                       DATABASE_URL="postgres://guichet:s3cret@db.example.org:6543/guichet_prod")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "db.example.org", 6543, "guichet_prod", "guichet", "s3cret")
    assert "transaction_mode" not in db.get("OPTIONS", {})


def test_a_sqlite_database_url_keeps_the_safe_defaults(tmp_path):
    path = tmp_path / "elsewhere.sqlite3"
    db = settings_json(tmp_path, 's.DATABASES["default"]', DEBUG="1", DATABASE_URL=f"sqlite:///{path}")
    assert db["NAME"] == str(path)
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]


def test_the_test_run_uses_the_database_it_was_given():
    url = os.environ.get("DATABASE_URL", "")
    engine = settings.DATABASES["default"]["ENGINE"]
    if url.startswith("postgres"):
        assert engine == "django.db.backends.postgresql"
    elif not url:
        assert engine == "django.db.backends.sqlite3"


# --- time and language ------------------------------------------------------------------------


def test_paris_time_and_french_first():
    assert settings.TIME_ZONE == "Europe/Paris"
    assert settings.GUICHET_RULES_TIME_ZONE == "Europe/Paris"
    assert settings.USE_TZ is True
    assert settings.LANGUAGE_CODE == "fr"
    assert [code for code, _name in settings.LANGUAGES] == ["fr", "en"]
    assert settings.USE_I18N is True


def test_display_time_zone_can_be_changed_but_rules_stay_in_paris(tmp_path):
    got = settings_json(tmp_path, "[s.TIME_ZONE, s.GUICHET_RULES_TIME_ZONE]", DEBUG="1",
                        GUICHET_DISPLAY_TIME_ZONE="America/Cayenne")
    assert got == ["America/Cayenne", "Europe/Paris"]


# --- PostgreSQL connections ------------------------------------------------------------------

PG = "postgres://postgres@127.0.0.1:5432/guichet"


def test_postgresql_prepares_its_statements_unless_told_not_to(tmp_path):
    expr = 's.DATABASES["default"]["OPTIONS"]'
    assert settings_json(tmp_path, expr, DEBUG="1", DATABASE_URL=PG) == {
        "server_side_binding": True, "prepare_threshold": 5}
    assert settings_json(tmp_path, expr, DEBUG="1", DATABASE_URL=PG, GUICHET_DB_PREPARED="0") == {}


def test_a_connection_pool_on_demand(tmp_path):
    got = settings_json(tmp_path, '[s.DATABASES["default"]["OPTIONS"]["pool"], s.DATABASES["default"]["CONN_MAX_AGE"]]',
                        DEBUG="1", DATABASE_URL=PG, GUICHET_DB_POOL="20")
    assert got == [{"min_size": 2, "max_size": 20, "timeout": 10}, 0]


@pytest.mark.parametrize("value", ["many", "0", "2", "-3", "2.5", "100000"])
def test_a_bad_pool_size_is_refused_by_name(tmp_path, value):
    r = run("import guichet.settings", tmp_path, DEBUG="1", DATABASE_URL=PG, GUICHET_DB_POOL=value)
    assert r.returncode != 0
    assert f"GUICHET_DB_POOL must be a number of connections per process, 3 to 1000 (got {value!r})" in r.stderr
