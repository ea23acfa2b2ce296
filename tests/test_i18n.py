"""The interface is French first: the catalogue is complete and compiled (bin/test compiles it)."""

import re
from pathlib import Path

from django.utils import translation

import guichet

PO = Path(guichet.__file__).parent / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def _entries(text: str):
    """(msgid, msgstr values) of each entry of a .po file, header excluded."""
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith("#~"):
            continue
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            m = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?|msgctxt) "(.*)"$', line)
            if m:
                key = m.group(1)
                fields[key] = m.group(2)
            elif line.startswith('"') and key:
                fields[key] += line[1:-1]
        if fields.get("msgid"):
            yield fields["msgid"], [v for k, v in fields.items() if k.startswith("msgstr")]


def test_every_interface_string_has_a_french_translation():
    missing = [msgid for msgid, strs in _entries(PO.read_text(encoding="utf-8")) if not all(strs)]
    assert not missing, f"{len(missing)} string(s) without French translation, e.g. {missing[:5]}"


def test_the_french_catalogue_is_compiled_and_active():
    with translation.override("fr"):
        assert translation.gettext("Works normally") == "Fonctionne normalement"
    with translation.override("en"):
        assert translation.gettext("Works normally") == "Works normally"


def test_every_string_of_the_code_and_templates_is_in_the_catalogue(tmp_path):
    """A string marked for translation but missing from the catalogue shows in English to a
    French user: extract the strings afresh (as ``makemessages`` does) and compare."""
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("xgettext") is None:  # bin/test installs gettext; without it nothing compiles
        raise AssertionError("xgettext not found: install gettext (bin/test does)")
    src = Path(guichet.__file__).parent
    copy = tmp_path / "guichet"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("migrations", "__pycache__", "*.mo", "static"))
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "fr", "--no-location", "--no-obsolete"],
        cwd=copy, check=True, capture_output=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "guichet.settings"},
    )
    fresh = {msgid for msgid, _ in _entries((copy / "locale/fr/LC_MESSAGES/django.po").read_text("utf-8"))}
    committed = {msgid for msgid, _ in _entries(PO.read_text(encoding="utf-8"))}
    missing = sorted(fresh - committed)
    assert not missing, (
        f"{len(missing)} string(s) not in the French catalogue (run makemessages and translate), "
        f"e.g. {missing[:5]}"
    )
