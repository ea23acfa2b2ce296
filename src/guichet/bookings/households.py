"""A household's own details that its family and the agents may change: the postal address
printed on invoices and credit notes.

The address follows the French postal norm (NF Z10-011): the recipient's name is printed from
``Household.display_name`` as the first line, then at most five lines of at most 38 characters
(street, complement, postcode and town). It is personal data but not in the sensitive class of
ADR 0011: a plain column, in the family's data download, cleared by the erasure.
"""

from __future__ import annotations

import unicodedata

from django.db import transaction
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from guichet.common.actor import Actor
from guichet.common.crypto import blind_index
from guichet.common.postdata import post_values
from guichet.journal.services import journal_append

from .models import Household

ADDRESS_MAX_LINES = 5
ADDRESS_LINE_MAX = 38


class HouseholdError(ValueError):
    """A refused change: ``field`` names the form field, ``message`` is for people."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def postal_address_clean(value: str) -> str:
    """The address as stored: lines stripped, blank lines dropped, ``\\n`` between lines.
    Raises ``HouseholdError('postal_address', ...)`` on control characters or a too long address."""
    text = str(value or "").replace("\r\n", "\n").replace("\r", "\n")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\n" for ch in text):
        raise HouseholdError(
            "postal_address",
            _(
                "Postal address: remove the control characters (tabs, invisible "
                "characters); write plain text, one line per address line."
            ),
        )
    lines = [" ".join(line.split()) for line in text.split("\n")]
    lines = [line for line in lines if line]
    if len(lines) > ADDRESS_MAX_LINES:
        raise HouseholdError(
            "postal_address", _("Postal address: at most %(n)d lines.") % {"n": ADDRESS_MAX_LINES}
        )
    for line in lines:
        if len(line) > ADDRESS_LINE_MAX:
            raise HouseholdError(
                "postal_address",
                _(
                    "Postal address: each line has at most %(n)d characters "
                    "(postal norm); split “%(line)s”."
                )
                % {"n": ADDRESS_LINE_MAX, "line": line},
            )
    return "\n".join(lines)


def posted_postal_address(data: QueryDict) -> str:
    """The ``postal_address`` field of a posted form, read once. Raises
    ``HouseholdError('postal_address', ...)`` when it was sent more than once or holds a control
    character other than a line break (``postal_address_clean`` checks the rest)."""
    errors: dict[str, str] = {}
    value = post_values(data, {"postal_address": _("Postal address")}, errors, lines=("postal_address",))
    if errors:
        raise HouseholdError("postal_address", errors["postal_address"])
    return value["postal_address"]


def household_address_set(
    *, household: Household, postal_address: str, actor: Actor, now=None
) -> bool:
    """Set the household's postal address (empty clears it). Returns whether it changed.
    Journaled as ``bookings.household.address``: the payload is a keyed digest of the address,
    the details say only whether it is now empty."""
    now = now or timezone.now()
    address = postal_address_clean(postal_address)
    with transaction.atomic():
        current = (
            Household.objects.select_for_update()
            .filter(pk=household.pk)
            .values_list("postal_address", flat=True)
            .first()
        )
        if current is None:
            raise HouseholdError("household", _("This family file no longer exists."))
        if current == address:
            household.postal_address = address
            return False
        Household.objects.filter(pk=household.pk).update(postal_address=address)
        journal_append(
            actor=actor,
            operation="bookings.household.address",
            objects=[household],
            payload={"postal_address": blind_index("bookings.household.postal_address", address)},
            details={"household": household.pk, "empty": not address},
            organisation_id=household.organisation_id,
            now=now,
        )
    household.postal_address = address
    return True
