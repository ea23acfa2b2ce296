"""Public texts are written in French, optionally with an English version beside them."""

from __future__ import annotations

from django.utils import translation


def pick(french: str, english: str | None) -> str:
    """The text to show in the active language: English when asked for and available."""
    if english and (translation.get_language() or "fr").startswith("en"):
        return english
    return french


class BilingualMixin:
    """``obj.tr("title")`` returns ``title_en`` in English when it is filled, else ``title``."""

    def tr(self, field: str) -> str:
        return pick(getattr(self, field), getattr(self, f"{field}_en", ""))
