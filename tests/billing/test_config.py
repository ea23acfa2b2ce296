"""Tariff files: the format, line-numbered errors, all or nothing, idempotent loading; the
command line (check, load, run, finalise, deposit, balance, credit note) and its errors."""

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from guichet.billing.config import TariffError, load_tariffs, parse_tariffs
from guichet.billing.demo import DEMO_DIR
from guichet.billing.models import (
    ActivityTariff,
    Invoice,
    Payment,
    QuotientBracket,
    TariffFile,
    UnitPrice,
)
from guichet.journal.models import Entry

from . import factories as f

pytestmark = pytest.mark.django_db


def tariffs(org):
    return f.TARIFFS.format(portal=org.portal.slug)


def errors_of(text, org=None):
    with pytest.raises(TariffError) as e:
        if org is None:
            parse_tariffs(text, "t.yaml")
        else:
            load_tariffs(text, "t.yaml", actor=f.ACTOR, now=f.NOW)
    return [str(x) for x in e.value.errors]


def test_load_twice_changes_nothing():
    org, _site, _acts = f.town()  # loads the tariffs once
    journal = Entry.objects.filter(operation="billing.tariffs.load").count()
    report = load_tariffs(tariffs(org), "t.yaml", actor=f.ACTOR, now=f.NOW)
    assert not report.changed and "unchanged" in str(report)
    assert Entry.objects.filter(operation="billing.tariffs.load").count() == journal == 1
    assert ActivityTariff.objects.filter(organisation=org).count() == 3
    # mercredis: 2 tariffs x 2 units x (4 brackets + non-residents); cantine: 1 x 1 x 5
    assert UnitPrice.objects.filter(organisation=org).count() == 2 * 2 * 5 + 5
    assert QuotientBracket.objects.filter(organisation=org).count() == 4


def test_both_demo_files_are_valid():
    for path in DEMO_DIR.glob("*-tariffs.yaml"):
        spec = parse_tariffs(path.read_text(encoding="utf-8"), path.name)
        assert spec.tariffs and spec.psu and spec.brackets


@pytest.mark.parametrize(("change", "expected"), [
    (("format: guichet-billing/1", "format: guichet-billing/9"), "t.yaml:1: format: 'guichet-billing/9' is not supported"),
    (("      - {code: C, up_to: 1400}", "      - {code: C, up_to: 800}"), "t.yaml:10: brackets[0].brackets[2].up_to: 800 is not above"),
    (("      - {code: D}", "      - {code: D, up_to: 3000}"), "the last bracket has no upper bound"),
    (("    default: D", "    default: Z"), "t.yaml:6: brackets[0].default: 'Z' is not one of the brackets"),
    (("ranks: [0%, 10%, 20%]", "ranks: [5%, 10%]"), "the first child has no sibling reduction"),
    (("ranks: [0%, 10%, 20%]", "ranks: [0%, ten]"), "expected a percentage like 10%"),
    (("late_cancellation_penalty: 2.00", "late_cancellation_penalty: 2.005"), "at most two decimals"),
    (("journee: {A: 5.00, B: 9.00, C: 13.00, D: 17.00, non_resident: 25.00}",
      "journee: {A: 5.00, B: 9.00, C: 13.00, non_resident: 25.00}"), "t.yaml:22: activities[0].tariffs[0].prices.journee: no price for: D"),
    (("journee: {A: 5.00, B: 9.00, C: 13.00, D: 17.00, non_resident: 25.00}",
      "journee: {A: 5.00, B: 9.00, C: 13.00, D: 17.00, Q: 1, non_resident: 25.00}"), "unknown bracket(s): Q"),
    (("journee: {A: 5.00, B: 9.00, C: 13.00, D: 17.00, non_resident: 25.00}",
      "journee: {A: 5.00, B: 9.00, C: 13.00, D: 17.00}"), "no price for: non_resident"),
    (("      - valid_from: 2024-11-01", "      - valid_from: 2024-01-01"), "t.yaml:24: activities[0].tariffs[1].valid_from: a tariff of 'mercredis' from 2024-01-01 is given twice (first on line 18)"),
    (("        floor: 801.00", "        floor: 8001.00"), "the ceiling is below the floor"),
    (("        ceiling: 6000.00", "        plafond: 6000.00"), "unknown field (expected one of: valid_from, floor"),
    (("effort_rates: [0.0619%", "effort_rates: [0.06195%"), "too many decimals or out of range"),
    (("  - valid_from: 2024-01-01\n    default: D", "  - valid_from: 2024-31-01\n    default: D"), "is not a date"),
])
def test_parse_errors_name_the_line_and_field(change, expected):
    text = f.TARIFFS.format(portal="p").replace(*change, 1)
    assert text != f.TARIFFS.format(portal="p"), change
    found = errors_of(text)
    assert any(expected in e for e in found), found


def test_yaml_syntax_error_is_reported_with_its_line():
    found = errors_of("format: guichet-billing/1\nportal: [x\n")
    assert found and found[0].startswith("t.yaml:") and "not valid YAML" in found[0]


def test_database_errors_write_nothing():
    org, _site, _acts = f.town(tariffs=False)
    text = (tariffs(org).replace("activity: cantine", "activity: piscine")
            .replace("          matin-repas:", "          goûter:"))
    found = errors_of(text, org)
    assert any("no activity 'piscine' in this organisation" in e for e in found), found
    assert any("no unit 'goûter' in activity 'mercredis'" in e for e in found), found
    assert not ActivityTariff.objects.exists() and not TariffFile.objects.exists()
    with pytest.raises(TariffError) as e:
        load_tariffs(tariffs(org).replace("activity: creche", "activity: cantine"), "t.yaml", actor=f.ACTOR, now=f.NOW)
    assert "'cantine' is not a crèche activity" in str(e.value)
    with pytest.raises(TariffError) as e:
        load_tariffs(tariffs(org).replace("organisation: ville", "organisation: agglo"), "t.yaml", actor=f.ACTOR,
                     now=f.NOW)
    assert "no organisation 'agglo'" in str(e.value)


def test_a_new_file_replaces_the_tariffs():
    org, _site, _acts = f.town()
    text = tariffs(org).replace("repas: {A: 1.00,", "repas: {A: 1.10,")
    report = load_tariffs(text, "t2.yaml", actor=f.ACTOR, now=f.NOW)
    assert report.changed
    price = UnitPrice.objects.get(unit__code="repas", bracket="A")
    assert price.price_cents == 110
    assert TariffFile.objects.get(organisation=org).source == "t2.yaml"


# --- the command line -----------------------------------------------------------------------


def cli(*args):
    out, err = StringIO(), StringIO()
    call_command("billing", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_cli_check_and_load(tmp_path):
    org, _site, _acts = f.town(tariffs=False)
    good = tmp_path / "good.yaml"
    good.write_text(tariffs(org), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(tariffs(org).replace("default: D", "default: Z"), encoding="utf-8")
    assert "good.yaml is valid" in cli("check", str(good))
    assert not ActivityTariff.objects.exists()
    with pytest.raises(CommandError, match="some files have errors"):
        cli("load", str(bad), str(good), str(tmp_path / "missing.yaml"))
    assert ActivityTariff.objects.filter(organisation=org).count() == 3  # the good file was loaded
    with pytest.raises(CommandError):
        cli("check", str(bad))


def test_cli_catch_up_end_to_end():
    org, site, acts = f.town()
    portal = org.portal.slug
    h = f.household(org, ref="F-001")
    f.quotient(h, dt.date(2024, 1, 1), 700)
    for d in f.wednesdays(2024, 10):
        f.book(h.children.get(), f.session(org, site, acts["mercredis"], d))
    out = cli("deposit", "--portal", portal, "--household", "F-001", "--amount", "20,00", "--method", "cash",
              "--key", "paper-0001")
    assert "REC-" in out and "20,00" in out and "in credit" in out
    out = cli("run", "--portal", portal, "--from", "2024-10", "--to", "2024-10", "--activities", "mercredis,cantine")
    assert "households invoiced: 1; invoices: 1; total 45,00 €" in out and "no anomalies" in out
    run_id = out.split()[1].rstrip(":")
    # Refused, naming the option, the date typed and the earliest accepted (whatever the language).
    with pytest.raises(CommandError, match=r"^--issue-date: .*01/01/1900.* 01/11/2024 "):
        cli("finalise", run_id, "--issue-date", "01/01/1900")
    with pytest.raises(CommandError, match="--issue-date: expected YYYY-MM-DD or DD/MM/YYYY"):
        cli("finalise", run_id, "--issue-date", "5 nov")
    assert not Invoice.objects.filter(number__isnull=False).exists()
    out = cli("finalise", run_id, "--issue-date", "05/11/2024")
    assert "FAC-2024-000001 to FAC-2024-000001" in out and "credit applied: 20,00 €" in out
    assert "invoice PDFs queued for rendering in the background (1 batches)" in out
    # Past its due date (30 days) and still owing 25,00 €: in the treasury's file.
    out = cli("treasury-export", "--portal", portal, "--as-of", "2025-01-31")
    assert "FAC-2024-000001" in out and "25.00" in out
    assert "FAC-2024-000001" not in cli("treasury-export", "--portal", portal, "--as-of", "2024-11-06")
    out = cli("balance", "--portal", portal, "--household", "F-001")
    assert "balance 25,00 € (owes)" in out and "FAC-2024-000001" in out
    line = Invoice.objects.get().lines.get()
    out = cli("credit-note", "--portal", portal, "--invoice", "FAC-2024-000001", "--reason", "closed one day",
              "--key", "cn-1", "--line", f"{line.pk}=9,00")
    assert re.search(r"credit note AV-\d{4}-000001: 9,00 € on FAC-2024-000001", out), out
    assert "balance 16,00 € (owes)" in cli("balance", "--portal", portal, "--household", "F-001")
    assert "final" in cli("runs", "--portal", portal)
    assert "already final" in cli("resume", run_id)


@pytest.mark.parametrize(("args", "message"), [
    (("run", "--portal", "nowhere", "--from", "2024-10", "--to", "2024-10", "--activities", "all"),
     "no organisation"),
    (("run", "--portal", "{portal}", "--from", "2024-13", "--to", "2024-10", "--activities", "all"),
     "--from/--to: '2024-13' is not a month"),
    (("run", "--portal", "{portal}", "--from", "2024-11", "--to", "2024-10", "--activities", "all"),
     "--last-month: "),  # then the service's message, in the language of the installation
    (("run", "--portal", "{portal}", "--from", "2024-10", "--to", "2024-10", "--activities", "piscine"),
     "--activities: unknown piscine"),
    (("deposit", "--portal", "{portal}", "--household", "NOPE", "--amount", "5", "--method", "cash", "--key", "k"),
     "--household: no household 'NOPE'"),
    (("deposit", "--portal", "{portal}", "--household", "F-9", "--amount", "5,555", "--method", "cash", "--key", "k"),
     "--amount: '5,555' is not an amount"),
    (("deposit", "--portal", "{portal}", "--household", "F-9", "--amount", "0", "--method", "cash", "--key", "k"),
     "--amount-cents:"),
    (("finalise", "999999"), "no run 999999"),
    (("treasury-export", "--portal", "{portal}", "--as-of", "31/01/2025"), "--as-of: '31/01/2025' is not a date"),
    (("treasury-export", "--portal", "nowhere"), "--portal: no page 'nowhere'"),
    (("credit-note", "--portal", "{portal}", "--invoice", "FAC-0", "--reason", "x", "--key", "k"),
     "--invoice: no issued invoice"),
])
def test_cli_bad_arguments_are_clear_errors_and_change_nothing(args, message):
    org, _site, _acts = f.town()
    f.household(org, ref="F-9")
    args = [a.replace("{portal}", org.portal.slug) for a in args]
    with pytest.raises(CommandError) as e:
        cli(*args)
    assert message in str(e.value)
    assert not Payment.objects.exists() and not Invoice.objects.exists()
