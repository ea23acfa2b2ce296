"""Water staff screens through the client, and the ``guichet water`` command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from guichet.accounts.models import StaffRole
from guichet.water import services as s
from guichet.water.models import Instalment, Reading
from guichet.water.sepa import validate_pain008

from .conftest import ACTOR, IBANS, D, at, debit_month, monthly_payer


@pytest.fixture
def finance(org):
    user = get_user_model().objects.create_user("compta", "compta@example.org", "x")
    StaffRole.objects.create(user=user, organisation=org, kind="finance", granted_at=timezone.now())
    return user


def url(org, rest=""):
    return f"/manage/water/{org.portal.slug}/{org.slug}/{rest}"


def test_only_finance_staff_of_the_organisation_see_the_screens(client, org, finance):
    assert client.get(url(org)).status_code == 302  # to sign in
    other = get_user_model().objects.create_user("guichet", "g@example.org", "x")
    StaffRole.objects.create(user=other, organisation=org, kind="counter", granted_at=timezone.now())
    client.force_login(other)
    assert client.get(url(org)).status_code == 403
    client.force_login(finance)
    assert client.get(url(org)).status_code == 200
    assert client.get(f"/manage/water/{org.portal.slug}/other-org/").status_code == 404


def test_customer_account_shows_states_in_words_and_a_masked_iban(client, org, finance):
    monthly_payer(org)
    debit_month(org, 1)
    s.instalments_mark_not_collected(organisation=org, due_from=D(2024, 2, 1), due_until=D(2024, 2, 28),
                                     reason="Cyberattaque", actor=ACTOR, now=at(D(2024, 3, 1)))
    client.force_login(finance)
    home = client.get("/en" + url(org)).content.decode()
    assert "Customers with instalments not collected or returned" in home and "C-1 — Client C-1" in home
    page = client.get("/en" + url(org, "customers/C-1/")).content.decode()
    assert "FR76 •••• 6702" in page and IBANS[0] not in page
    assert "Collected by direct debit" in page and "Not collected (service interruption)" in page
    assert "Cyberattaque" in page and "Planned" in page
    assert client.get(url(org, "customers/NOPE/")).status_code == 404


def test_outage_form_marks_and_reports_then_bad_input_changes_nothing(client, org, finance):
    monthly_payer(org)
    client.force_login(finance)
    bad = client.post(url(org, "outage/"), {"due_from": "2024-03-01", "due_until": "mars", "reason": ""})
    assert bad.status_code == 400
    assert not Instalment.objects.filter(state="not_collected").exists()
    ok = client.post(url(org, "outage/"), {"due_from": "2024-03-01", "due_until": "2024-06-30", "reason": "Panne"},
                     follow=True)
    assert ok.status_code == 200
    assert Instalment.objects.filter(state="not_collected").count() == 4
    reversed_ = client.post(url(org, "outage/"), {"due_from": "2024-06-30", "due_until": "2024-03-01",
                                                   "reason": "Panne"})
    assert reversed_.status_code == 400


def test_debit_runs_list_and_download_a_valid_file(client, org, finance):
    monthly_payer(org)
    run = debit_month(org, 1).run
    client.force_login(finance)
    page = client.get(url(org, "debit-runs/")).content.decode()
    assert "48,00" in page and "FRST 1" in page
    response = client.get(url(org, f"debit-runs/{run.pk}/pain008.xml"))
    assert response["Content-Type"] == "application/xml" and "attachment" in response["Content-Disposition"]
    validate_pain008(response.content)


def test_regularisation_summary_screen(client, org, finance):
    contract = monthly_payer(org)
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    s.regularisation_run(organisation=org, year=2024, readings_until=D(2024, 11, 30), issued_on=D(2024, 11, 25),
                         actor=ACTOR, now=at(D(2024, 11, 25)))
    client.force_login(finance)
    page = client.get("/en" + url(org, "regularisations/")).content.decode()
    assert "601,57" in page and "Regularisation 2024" in page
    # The French page labels every summary row in French (they were English: ``_l`` was not extracted).
    page = client.get(url(org, "regularisations/")).content.decode()
    for french in ("Total facturé", "Échéances effectivement prélevées (déduites)", "Soldes à payer",
                   "Soldes créditeurs reportés", "Soldes créditeurs à rembourser", "Non prélevées pendant une interruption",
                   "Échéanciers de l’an prochain (nombre)", "Échéanciers de l’an prochain (total)",
                   "Relevés estimés"):
        assert french in page, french
    for english in ("Total billed", "Balances due", "Credits", "Estimated readings", "Next year", "(, total)"):
        assert english not in page, english


def test_outage_form_accepts_french_dates_and_says_the_format(client, org, finance):
    monthly_payer(org)
    client.force_login(finance)
    bad = client.post(url(org, "outage/"), {"due_from": "2024-03-01", "due_until": "31/02/2024", "reason": "Panne"})
    assert bad.status_code == 400 and "par exemple 24/11/2026" in bad.content.decode()
    assert not Instalment.objects.filter(state="not_collected").exists()
    ok = client.post(url(org, "outage/"), {"due_from": "01/03/2024", "due_until": "30/06/2024", "reason": "Panne"},
                     follow=True)
    assert ok.status_code == 200
    assert Instalment.objects.filter(state="not_collected").count() == 4


# --- the command -----------------------------------------------------------------------------------


def _org_arg(org):
    return f"{org.portal.slug}/{org.slug}"


def test_command_import_errors_are_clear_and_change_nothing(org, tmp_path):
    monthly_payer(org)
    bad = tmp_path / "r.csv"
    bad.write_text("meter;date;index;kind\nM-C-1;2024-11-18;abc;actual\n", encoding="utf-8")
    with pytest.raises(CommandError, match="(?s)1 wrong line.*nothing imported.*line 2: index 'abc'"):
        call_command("water", "import-readings", "--organisation", _org_arg(org), str(bad))
    assert not Reading.objects.filter(date=D(2024, 11, 18)).exists()
    with pytest.raises(CommandError, match="no organisation 'x/y'"):
        call_command("water", "outage", "--organisation", "x/y", "--from", "2024-01-01", "--to", "2024-01-02",
                     "--reason", "r")
    with pytest.raises(CommandError, match="'2024-13-01' is not a date"):
        call_command("water", "outage", "--organisation", _org_arg(org), "--from", "2024-13-01", "--to",
                     "2024-01-02", "--reason", "r")


def test_command_full_cycle_prints_summaries(org, tmp_path, time_machine):
    time_machine.move_to(at(D(2024, 1, 3)), tick=False)
    monthly_payer(org)
    out, err = StringIO(), StringIO()
    xml = tmp_path / "jan.xml"
    call_command("water", "debit-run", "--organisation", _org_arg(org), "--collection-date", "2024-01-10",
                 "--from", "2024-01-01", "--to", "2024-01-31", "--output", str(xml), stdout=out, stderr=err)
    assert "debits                             1" in out.getvalue() and "48,00" in out.getvalue()
    assert "debits: 1/1 (100 %)" in err.getvalue()
    validate_pain008(xml.read_bytes())
    call_command("water", "debit-run", "--organisation", _org_arg(org), "--collection-date", "2024-01-10",
                 "--from", "2024-01-01", "--to", "2024-01-31", stdout=(again := StringIO()))
    assert "already made with this key" in again.getvalue()
    call_command("water", "outage", "--organisation", _org_arg(org), "--from", "2024-02-01", "--to", "2024-06-30",
                 "--reason", "Cyberattaque", stdout=(o := StringIO()))
    assert "instalments                        5" in o.getvalue() and "240,00" in o.getvalue()
    readings = tmp_path / "r.csv"
    readings.write_text("meter;date;index;kind\nM-C-1;18/11/2024;1322;réel\n", encoding="utf-8")
    call_command("water", "import-readings", "--organisation", _org_arg(org), str(readings), stdout=(r := StringIO()),
                 stderr=StringIO())
    assert "volume since previous readings     118 m³" in r.getvalue()
    time_machine.move_to(at(D(2024, 11, 25)), tick=False)
    call_command("water", "regularise", "--organisation", _org_arg(org), "--year", "2024", "--readings-until",
                 "2024-11-30", "--issued-on", "2024-11-25", stdout=(g := StringIO()), stderr=StringIO())
    text = g.getvalue()
    assert "total billed                       601,57" in text and "balances due                       553,57" in text
    assert "not collected (outage)             240,00" in text
    call_command("water", "plan", "--organisation", _org_arg(org), "--invoice", "R2024-000001", "--count", "3",
                 "--first-due", "2025-01-10", stdout=(p := StringIO()))
    assert "184,53" in p.getvalue()
    with pytest.raises(CommandError, match="(?s)nothing to regularise.*nothing was changed"):
        call_command("water", "regularise", "--organisation", _org_arg(org), "--year", "2024", "--readings-until",
                     "2024-11-30", "--issued-on", "2024-11-25", stdout=StringIO(), stderr=StringIO())


def test_plan_form_spreads_a_balance_and_names_bad_input(client, org, finance):
    contract = monthly_payer(org)
    s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    s.regularisation_run(organisation=org, year=2024, readings_until=D(2024, 11, 30), issued_on=D(2024, 11, 25),
                         actor=ACTOR, now=at(D(2024, 11, 25)))
    client.force_login(finance)
    page = client.get("/en" + url(org, "customers/C-1/")).content.decode()
    assert "Spread this balance" in page
    plan_url = url(org, "customers/C-1/invoices/R2024-000001/plan/")
    bad = client.post("/en" + plan_url, {"count": "30", "first_due": "2025-01-10"})
    assert bad.status_code == 400 and "between 2 and 12" in bad.content.decode()
    assert not Instalment.objects.filter(note="instalment plan").exists()
    ok = client.post(plan_url, {"count": "3", "first_due": "2025-01-10"})
    assert ok.status_code == 302
    parts = list(Instalment.objects.filter(note="instalment plan", state="planned").values_list("amount", flat=True))
    assert len(parts) == 3 and sum(parts) == 60157  # nothing was collected in 2024: the whole bill is due
    page = client.get("/en" + url(org, "customers/C-1/")).content.decode()
    assert "Spread this balance" not in page


def test_command_move_in_mandate_reading_move_out(org, time_machine):
    time_machine.move_to(at(D(2024, 3, 1)), tick=False)
    o = _org_arg(org)
    call_command("water", "move-in", "--organisation", o, "--customer", "C-9", "--name", "Mme Test", "--address",
                 "2 rue Y", "--point", "P-9", "--meter", "M-9", "--diameter", "15", "--date", "2024-03-01",
                 "--index", "10", "--monthly", "--basis", "400,00", stdout=(out := StringIO()))
    assert "schedule 2024" in out.getvalue() and "400,00" in out.getvalue()
    call_command("water", "mandate", "--organisation", o, "--customer", "C-9", "--reference", "RUM-9",
                 "--signed-on", "2024-03-01", "--iban", IBANS[2], stdout=(m := StringIO()))
    assert "FR76 •••• 4593" in m.getvalue() and IBANS[2] not in m.getvalue()
    with pytest.raises(CommandError, match="IBAN is not valid"):
        call_command("water", "mandate", "--organisation", o, "--customer", "C-9", "--reference", "RUM-10",
                     "--signed-on", "2024-03-01", "--iban", "FR00", stdout=StringIO())
    call_command("water", "reading", "--organisation", o, "--meter", "M-9", "--date", "2024-06-01", "--index", "40",
                 stdout=StringIO())
    with pytest.raises(CommandError, match="below the actual reading"):
        call_command("water", "reading", "--organisation", o, "--meter", "M-9", "--date", "2024-07-01", "--index",
                     "30", stdout=StringIO())
    call_command("water", "move-out", "--organisation", o, "--customer", "C-9", "--date", "2024-07-15", "--index",
                 "55", "--issued-on", "2024-07-20", stdout=(f := StringIO()))
    assert "final invoice F2024-000001" in f.getvalue() and "balance due" in f.getvalue()
    with pytest.raises(CommandError, match="no running contract"):
        call_command("water", "move-out", "--organisation", o, "--customer", "C-9", "--date", "2024-08-15",
                     "--index", "60", "--issued-on", "2024-08-20", stdout=StringIO())


def test_command_lists_the_credits_to_refund(org):
    from guichet.water.models import Customer

    for ref, preference in (("C-1", "refund"), ("C-2", "carry_over")):
        contract = monthly_payer(org, ref, basis=90000)
        Customer.objects.filter(pk=contract.customer_id).update(credit_preference=preference)
        s.reading_record(meter=contract.meter, date=D(2024, 11, 18), index=1322, actor=ACTOR, now=at(D(2024, 11, 19)))
    for month in range(1, 11):
        debit_month(org, month)
    s.regularisation_run(organisation=org, year=2024, readings_until=D(2024, 11, 30), issued_on=D(2024, 11, 25),
                         actor=ACTOR, now=at(D(2024, 11, 25)))
    call_command("water", "refunds", "--organisation", _org_arg(org), stdout=(out := StringIO()),
                 stderr=(err := StringIO()))
    rows = out.getvalue().splitlines()
    # C-1 is refunded 900,00 - 601,57; C-2's credit is carried over to its 2025 schedule: not listed.
    assert rows == ["invoice;issued_on;customer;amount;account",
                    "R2024-000001;2024-11-25;C-1;298.43;FR76 •••• 6702"]
    assert "298,43" in err.getvalue()
