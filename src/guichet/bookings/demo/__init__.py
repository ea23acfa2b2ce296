"""Demo configuration of the family portal for the two towns (activities, sites, calendars,
windows, one demo household each with a guardian account).

Demo guardian accounts (``parent.maisons-alfort``, ``parent.saint-nazaire``) get their password
from the ``GUICHET_DEMO_PASSWORD`` environment variable, or the documented local-demo default
``DEMO_PASSWORD_DEFAULT``, only when the account is created. Never use the demo on a public
server.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.utils import timezone

from guichet.common.actor import Actor

DEMO_DIR = Path(__file__).resolve().parent
FILES = ("maisons-alfort.yaml", "saint-nazaire.yaml")
DEMO_PASSWORD_DEFAULT = "demo-famille-2024"


def demo_paths() -> list[Path]:
    return [DEMO_DIR / name for name in FILES]


def load_bookings_demo() -> list[str]:
    """Load both files (idempotent); returns one line of report per file."""
    from django.core.management.base import CommandError

    from guichet.bookings.config import ConfigError, load_config

    password = os.environ.get("GUICHET_DEMO_PASSWORD") or DEMO_PASSWORD_DEFAULT
    lines = []
    for path in demo_paths():
        try:
            report = load_config(path.read_text(encoding="utf-8"), path.name, actor=Actor.cli(),
                                 now=timezone.now(), demo_password=password)
        except ConfigError as e:
            raise CommandError(f"bookings demo data {path.name} is invalid:\n{e}", returncode=2) from None
        lines.append(f"bookings demo {path.name}: {report}")
    return lines
