"""Rows written in bulk (COPY on PostgreSQL) are sealed like rows saved through the ORM."""

import datetime as dt

from django.db import connection

from guichet.water import bulk
from guichet.water.models import Mandate

from .conftest import IBANS, monthly_payer


def test_a_mandate_written_in_bulk_stores_its_iban_encrypted_and_reads_it_back(org):
    contract = monthly_payer(org, iban=None)
    bulk.insert_rows(Mandate, [{
        "organisation_id": org.pk, "customer_id": contract.customer_id, "reference": "RUM-BULK",
        "signed_on": dt.date(2019, 3, 1), "iban": IBANS[1], "bic": "", "one_off": False, "status": "active",
        "first_debit_on": None, "last_debit_on": None, "revoked_on": None,
    }])
    with connection.cursor() as cur:
        cur.execute("SELECT iban FROM water_mandate WHERE reference = %s", ["RUM-BULK"])
        (stored,) = cur.fetchone()
    assert IBANS[1] not in stored and IBANS[1][4:] not in stored
    assert Mandate.objects.get(reference="RUM-BULK").iban == IBANS[1]
