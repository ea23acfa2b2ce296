"""SEPA direct debit: identifiers and pain.008 files.

Files are produced by sepaxml (pain.008.001.08, the version of the EPC 2023 rulebook) and
validated against the XSD that sepaxml ships, with lxml (a compiled validator: a 20,000-debit file
validates in well under a second, where a pure-Python validator takes tens of seconds).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sepaxml
from lxml import etree
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import at_02
from stdnum.exceptions import ValidationError as StdnumError

SCHEMA = "pain.008.001.08"


class SepaError(ValueError):
    pass


def clean_iban(value: str) -> str:
    """The IBAN in compact form, or :class:`SepaError` (the message never repeats the IBAN)."""
    try:
        return IBAN(value or "").compact
    except SchwiftyException:
        raise SepaError("the IBAN is not valid (wrong length, country or check digits)") from None


def clean_bic(value: str) -> str:
    if not value:
        return ""
    try:
        return str(BIC(value))
    except SchwiftyException:
        raise SepaError("the BIC is not valid") from None


def clean_creditor_id(value: str) -> str:
    """A SEPA creditor identifier (ICS, e.g. ``FR72ZZZ123456``), checked with python-stdnum."""
    try:
        return at_02.validate(value or "")
    except StdnumError:
        raise SepaError(f"{value!r} is not a valid SEPA creditor identifier") from None


@dataclass(frozen=True)
class Debit:
    mandate_reference: str
    mandate_signed_on: dt.date
    iban: str
    bic: str
    name: str
    amount: int  # cents
    sequence_type: str
    end_to_end_id: str
    description: str


def build_pain008(*, creditor_name: str, creditor_id: str, creditor_iban: str, creditor_bic: str,
                  collection_date: dt.date, debits: list[Debit]) -> tuple[str, bytes]:
    """The pain.008 document for ``debits`` (grouped by sequence type); returns
    ``(message_id, xml)``. Not validated here: call :func:`validate_pain008`."""
    config = {"name": creditor_name, "IBAN": creditor_iban, "batch": True,
              "creditor_id": creditor_id, "currency": "EUR"}
    if creditor_bic:
        config["BIC"] = creditor_bic
    doc = sepaxml.SepaDD(config, schema=SCHEMA, clean=True)
    for d in debits:
        payment = {"name": d.name, "IBAN": d.iban, "amount": d.amount, "type": d.sequence_type,
                   "collection_date": collection_date, "mandate_id": d.mandate_reference,
                   "mandate_date": d.mandate_signed_on, "description": d.description,
                   "endtoend_id": d.end_to_end_id}
        if d.bic:
            payment["BIC"] = d.bic
        doc.add_payment(payment)
    return doc.msg_id, doc.export(validate=False)


@cache
def _schema() -> etree.XMLSchema:
    path = Path(sepaxml.__file__).resolve().parent / "schemas" / f"{SCHEMA}.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def validate_pain008(xml: bytes) -> None:
    """Raise :class:`SepaError` naming the first XSD violation."""
    schema = _schema()
    doc = etree.fromstring(xml)
    if not schema.validate(doc):
        err = schema.error_log.last_error
        raise SepaError(f"the pain.008 file does not match the {SCHEMA} schema: line {err.line}: {err.message}")


def control_sum(xml: bytes) -> tuple[int, int]:
    """``(number of transactions, control sum in cents)`` read back from the group header."""
    doc = etree.fromstring(xml)
    ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{SCHEMA}"}
    n = int(doc.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs", namespaces=ns))
    total = doc.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum", namespaces=ns)
    units, _, cents = total.partition(".")
    return n, int(units) * 100 + int((cents or "0").ljust(2, "0"))
