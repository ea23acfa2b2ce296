"""The treasury export: CSV of issued invoices unpaid after their due date (layout in
docs/treasury-export.md), from the finance screen and from the command line."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import translation

from guichet.billing import services, treasury

from . import factories as F
from .outputs_data import NOW, billed_town, staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The pages in English (``/en/...``): the assertions read the English texts; the French
    catalogue is the lead's, checked by tests/test_i18n.py."""
    with translation.override("en"):
        yield

DUE = dt.date(2024, 12, 31)  # issue 2024-12-01 + 30 days


def parse(data: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.lstrip("\ufeff")), delimiter=";"))


def export(org, as_of) -> list[dict]:
    data, _n, _total = treasury.csv_bytes(org, as_of=as_of)
    return parse(data.decode("utf-8"))


def test_an_unpaid_invoice_appears_the_day_after_its_due_date():
    b = billed_town()
    assert export(b.org, DUE) == []  # due on the 31st: not late yet
    rows = export(b.org, DUE + dt.timedelta(days=10))
    assert rows == [{
        "format": "guichet-treasury/1", "organisation": f"{b.org.portal.slug}/ville",
        "invoice_number": b.invoice.number, "issue_date": "2024-12-01", "due_date": "2024-12-31",
        "days_overdue": "10", "household_reference": "F001", "debtor_name": b.household.display_name,
        "period_start": "2024-09", "period_end": "2024-10", "total_eur": "54.00", "paid_eur": "20.00",
        "outstanding_eur": "34.00",
    }]


def test_paid_invoices_and_credit_notes_are_left_out_partial_payments_reduce_the_amount():
    b = billed_town()
    services.payment_record(invoice=b.invoice, amount_cents=1000, method="cheque", actor=F.ACTOR,
                            now=NOW + dt.timedelta(days=2), idempotency_key="p1", reference="1")
    rows = export(b.org, dt.date(2025, 2, 1))
    assert [r["outstanding_eur"] for r in rows] == ["24.00"]
    services.credit_note_create(invoice=b.invoice, actor=F.ACTOR, now=NOW + dt.timedelta(days=3), reason="x",
                                idempotency_key="cn")
    assert export(b.org, dt.date(2025, 2, 1)) == []


def test_another_organisation_is_not_exported():
    a, other = billed_town(), billed_town(ref="Z9")
    assert {r["household_reference"] for r in export(a.org, dt.date(2025, 2, 1))} == {"F001"}
    assert {r["household_reference"] for r in export(other.org, dt.date(2025, 2, 1))} == {"Z9"}


def test_the_finance_screen_previews_and_downloads(client):
    b = billed_town()
    client.force_login(staff(b.org, "compta@ville.example", "finance"))
    url = reverse("billing:staff-treasury", args=[b.org.portal.slug, b.org.slug])
    page = client.get(url, {"as_of": "2025-01-10"}).content.decode().replace("\u202f", " ").replace("\u00a0", " ")
    assert "1 unpaid invoice, 34,00 € outstanding." in page and b.invoice.number in page
    r = client.get(url, {"as_of": "2025-01-10", "download": "1"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    assert "tresor-impayes-" in r["Content-Disposition"] and "2025-01-10.csv" in r["Content-Disposition"]
    assert [row["invoice_number"] for row in parse(r.content.decode("utf-8"))] == [b.invoice.number]
    r = client.get(url, {"as_of": "le 10 janvier", "download": "1"})
    assert r.status_code == 400 and b"Enter a date" in r.content


def test_the_command_writes_the_file_and_says_how_many(tmp_path):
    b = billed_town()
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "t.csv"
    n = treasury.run_command({"portal": b.org.portal.slug, "organisation": "", "as_of": "2025-01-15",
                              "output": str(target)}, out, err, today=dt.date(2030, 1, 1))
    assert n == 1
    assert "1 unpaid invoice(s) due before 2025-01-15, outstanding 34.00 EUR." in err.getvalue()
    rows = parse(target.read_text(encoding="utf-8-sig"))
    assert rows[0]["days_overdue"] == "15"
    # standard output, default date = today
    n = treasury.run_command({"portal": b.org.portal.slug, "as_of": "", "output": "-"}, out, err,
                             today=dt.date(2025, 1, 1))
    assert n == 1 and b.invoice.number in out.getvalue()


@pytest.mark.parametrize(("options", "message"), [
    ({"portal": "nowhere"}, "--portal: no page"),
    ({"portal": "PORTAL", "organisation": "mairie"}, "--organisation: no organisation 'mairie'"),
    ({"portal": "PORTAL", "as_of": "31/12/2024"}, "--as-of: '31/12/2024' is not a date"),
    ({"portal": "PORTAL", "output": "/nonexistent-dir/x.csv"}, "--output: cannot write"),
])
def test_command_errors_are_clear(options, message):
    b = billed_town()
    options = {k: (b.org.portal.slug if v == "PORTAL" else v) for k, v in options.items()}
    with pytest.raises(CommandError, match=message):
        treasury.run_command(options, io.StringIO(), io.StringIO(), today=dt.date(2025, 1, 1))
