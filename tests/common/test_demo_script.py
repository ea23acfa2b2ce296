"""bin/demo prints a command that shows the demo editor's current two-step code: copied into a
fresh shell (none of bin/demo's variables set), it must work."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "bin" / "demo"


def _printed_hint(guichet: Path, key_file: Path) -> str:
    """The hint exactly as bin/demo builds it, for these paths."""
    (line,) = [
        ln for ln in DEMO.read_text(encoding="utf-8").splitlines() if ln.startswith("CODE_HINT=")
    ]
    script = f'G="{guichet}"\nTOTP_KEY_FILE="{key_file}"\n{line}\nprintf %s "$CODE_HINT"\n'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout


def test_the_printed_twofactor_code_command_works_in_a_fresh_shell(tmp_path):
    key_file = tmp_path / "dir with space" / "demo-editor-totp-key"
    key_file.parent.mkdir()
    key_file.write_text(secrets.token_hex(20) + "\n", encoding="utf-8")
    guichet = Path(sys.executable).with_name("guichet")
    hint = _printed_hint(guichet, key_file)
    assert "twofactor code" in hint
    # A fresh shell: no SECRET_KEY, no DEBUG, no data directory.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", hint], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"\d{6}\n?", done.stdout)
    # The same command without the variable bin/demo now prints is what QA copied: it fails.
    bare = hint.replace("GUICHET_INSECURE_DEV_KEY=1 ", "")
    assert (
        subprocess.run(["bash", "-c", bare], capture_output=True, text=True, env=env).returncode
        != 0
    )


def test_the_code_command_needs_no_field_key(tmp_path):
    """In bin/demo's own directory the data is encrypted with its field key: the printed
    command, run there without that key, must still print the code (it reads no account)."""
    key_file = tmp_path / "demo-editor-totp-key"
    key_file.write_text(secrets.token_hex(20) + "\n", encoding="utf-8")
    guichet = Path(sys.executable).with_name("guichet")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "GUICHET_INSECURE_DEV_KEY": "1", "GUICHET_FIELD_KEY_FILE": str(tmp_path / "no-such-key")}
    done = subprocess.run([str(guichet), "twofactor", "code", "--key-file", str(key_file)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"\d{6}\n?", done.stdout)
