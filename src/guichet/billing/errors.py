"""The error every billing service raises for a refused action."""

from __future__ import annotations


class BillingError(Exception):
    """A refused action: ``code`` for programs, ``message`` for people (translated), ``field``
    for forms (the keyword argument at fault, or "")."""

    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message)
        self.code = code
        self.message = str(message)
        self.field = field

    def __str__(self) -> str:
        return self.message
