"""The ``guichet`` command on a machine that is not configured yet: a plain message, no traceback."""

import os
import subprocess
import sys


def test_a_missing_secret_key_is_a_plain_message_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DEBUG", "GUICHET_INSECURE_DEV_KEY", "DJANGO_SETTINGS_MODULE")}
    r = subprocess.run([sys.executable, "-c", "from guichet.cli import main; main()", "billing", "--help"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "SECRET_KEY is not set" in r.stderr and "GUICHET_INSECURE_DEV_KEY=1" in r.stderr
