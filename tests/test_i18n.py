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
