"""``guichet status import|check|dump|export`` and ``guichet demo``: exit codes and messages."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from guichet.catalog.models import Portal
from guichet.demo import DEMO_DIR
from guichet.journal.models import Entry
from guichet.status.models import Availability

SEED = DEMO_DIR / "maisons-alfort.yaml"


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(SEED.read_text(encoding="utf-8").replace("state: suspended", "state: broken", 1), encoding="utf-8")
    return path


@pytest.mark.django_db
def test_import_prints_a_summary_and_publishes():
    out, _ = run("status", "import", str(SEED))
    assert "published on page 'maisons-alfort': 5 services, 22 procedures, 22 availability rows, 3 advisories" in out
    assert Availability.objects.filter(organisation__portal__slug="maisons-alfort").count() == 22


@pytest.mark.django_db
def test_import_of_a_bad_file_exits_2_and_changes_nothing(bad_file, capsys):
    entries = Entry.objects.count()
    with pytest.raises(CommandError) as exc:
        run("status", "import", str(bad_file))
    assert exc.value.returncode == 2
    assert "nothing was changed" in str(exc.value)
    assert "bad.yaml:" in capsys.readouterr().err
    assert Entry.objects.count() == entries
    assert not Portal.objects.filter(slug="maisons-alfort").exists()


@pytest.mark.django_db
def test_check_validates_without_writing(bad_file, capsys):
    out, _ = run("status", "check", str(SEED))
    assert "OK" in out
    assert not Portal.objects.exists()
    with pytest.raises(CommandError) as exc:
        run("status", "check", str(bad_file))
    assert exc.value.returncode == 2
    assert "'broken' is not one of: normal, degraded, suspended" in capsys.readouterr().err


@pytest.mark.django_db
@pytest.mark.parametrize("args,message", [
    (("status", "import", "/nonexistent/notice.yaml"), "no such file"),
    (("status", "check", "/"), "is a directory"),
    (("status", "dump", "--portal", "nowhere"), "no portal 'nowhere'"),
    (("status", "export", "/tmp/x", "--portal", "nowhere"), "no portal 'nowhere'"),
])
def test_bad_arguments_exit_2_with_a_message(args, message):
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert exc.value.returncode == 2
    assert message in str(exc.value)


@pytest.mark.django_db
def test_dump_to_a_file(tmp_path):
    run("status", "import", str(SEED))
    target = tmp_path / "out.yaml"
    out, _ = run("status", "dump", "--portal", "maisons-alfort", "-o", str(target))
    assert "written to" in out
    assert target.read_text(encoding="utf-8").startswith("format: guichet-notice/1\n")


@pytest.mark.django_db
def test_export_writes_the_static_site(tmp_path):
    run("status", "import", str(SEED))
    run("status", "export", str(tmp_path), "--portal", "maisons-alfort")
    assert "01 43 96 77 03" in (tmp_path / "maisons-alfort" / "index.html").read_text(encoding="utf-8")
    run("status", "export", str(tmp_path / "all"))
    assert (tmp_path / "all" / "maisons-alfort" / "status.json").exists()


@pytest.mark.django_db
def test_demo_is_idempotent():
    run("demo")
    entries = Entry.objects.count()
    out, _ = run("demo")
    assert "saint-nazaire" in out and "maisons-alfort" in out
    assert Entry.objects.count() == entries  # the pages are kept as they are: nothing written at all


def test_the_command_line_reports_a_bad_file_without_a_traceback(bad_file, tmp_path):
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    guichet = Path(sys.executable).with_name("guichet")
    result = subprocess.run([str(guichet), "status", "check", str(bad_file)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2
    assert "bad.yaml:" in result.stderr and "'broken' is not one of" in result.stderr
    assert "Traceback" not in result.stderr
    result = subprocess.run([str(guichet), "status", "import", str(tmp_path / "missing.yaml")], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "missing.yaml: no such file" in result.stderr
    assert "Traceback" not in result.stderr
