"""Demo gates: the Saint-Nazaire family portal follows its status board (``guichet demo``)."""

from __future__ import annotations

from pathlib import Path

from django.utils import timezone

from guichet.common.actor import Actor

DEMO_DIR = Path(__file__).resolve().parent
FILES = ("saint-nazaire-gates.yaml",)


def load_recovery_demo() -> list[str]:
    """Load the demo gates files (idempotent); one line of report per file."""
    from django.core.management.base import CommandError

    from guichet.recovery.config import ConfigError, load

    lines = []
    for name in FILES:
        try:
            org, counts = load((DEMO_DIR / name).read_text(encoding="utf-8"), actor=Actor.cli(), now=timezone.now())
        except ConfigError as e:
            raise CommandError(f"demo gates {name} are invalid: {e}", returncode=2) from None
        lines.append(f"demo gates '{org.portal.slug}/{org.slug}' loaded from {name}: "
                     f"{counts['added']} added, {counts['unchanged']} unchanged")
    return lines
