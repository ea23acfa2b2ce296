"""The application server refuses to start without a field key, saying why (no 500 later)."""

import os
import subprocess
import sys

from guichet.common import crypto


def _start(tmp_path, code: str = "", **extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GUICHET_", "DJANGO_")) and k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL"}
    }
    env.update(SECRET_KEY="x" * 50, GUICHET_DATA_DIR=str(tmp_path), **extra)
    return subprocess.run(
        [sys.executable, "-c", f"{code}import guichet.wsgi; print('started')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_server_without_field_key_stops_with_the_fix(tmp_path):
    run = _start(tmp_path)
    assert run.returncode == 3
    assert "cannot start" in run.stderr
    assert "GUICHET_FIELD_KEY_FILE" in run.stderr and "guichet fieldkey generate" in run.stderr
    assert "Traceback" not in run.stderr
    assert "started" not in run.stdout


def test_production_server_with_a_key_file_starts(tmp_path):
    key = tmp_path / "field.key"
    key.write_text(crypto.new_key_text() + "\n", encoding="ascii")
    run = _start(tmp_path, GUICHET_FIELD_KEY_FILE=str(key))
    assert run.returncode == 0, run.stderr
    assert "started" in run.stdout


GEVENT = "from gevent import monkey; monkey.patch_all(); "  # what gunicorn's gevent worker does first


def test_gevent_workers_on_postgresql_without_a_pool_stop_with_the_fix(tmp_path):
    key = tmp_path / "field.key"
    key.write_text(crypto.new_key_text() + "\n", encoding="ascii")
    pg = {"GUICHET_FIELD_KEY_FILE": str(key), "DATABASE_URL": "postgres://guichet@127.0.0.1:5432/guichet"}
    run = _start(tmp_path, GEVENT, **pg)
    assert run.returncode == 3
    assert "cannot start" in run.stderr and "GUICHET_DB_POOL" in run.stderr and "Traceback" not in run.stderr
    for code, extra in ((GEVENT, {"GUICHET_DB_POOL": "20"}), ("", {})):  # with a pool; threads
        run = _start(tmp_path, code, **pg, **extra)
        assert run.returncode == 0, run.stderr
        assert "started" in run.stdout
