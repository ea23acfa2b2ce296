"""Canary across all modules: unique fake names, e-mail addresses, an IBAN (valid checksum), a
family quotient and justification texts are pushed through every flow — sign-up, status
subscription, bookings (basket, waiting list, cancellation, justification upload), billing
(quotient, deposit, payment, invoice run, PDF, treasury export), water (customer, mandate with
IBAN, SEPA file), paper recovery forms, data download, erasure request and execution, backups,
error pages (400, 403, 404, 500 with the canary in the URL or the body).

Then the places where personal data must never be are searched: every log record (all loggers,
DEBUG), every journal entry (all columns), the backup's manifest and the commands' output, and
the error pages: zero hits. The outputs that are *meant* to hold the data (the family's own pages,
its download, PDFs, the SEPA file, e-mails to the family) are not searched.

Independent of how sensitive fields are stored (encryption at rest is tested on its own).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from guichet.accounts.models import ApiToken, StaffRole
from guichet.billing import services as billing
from guichet.billing.models import Payment
from guichet.bookings.models import AgentRole, Booking, Guardian, Household, WaitlistEntry
from guichet.common.canonical import digest
from guichet.journal import backup as bk
from guichet.journal.models import Entry
from guichet.status import services as status
from guichet.water import services as water
from guichet.water.demo import TARIFF_2023
from tests.billing import factories as F
from tests.billing.outputs_data import billed_town
from tests.bookings.test_services import BEFORE, World, paris

pytestmark = pytest.mark.django_db(transaction=True)

CANARY = "Kqz7canari"
EMAIL = f"{CANARY.lower()}.parent@example.org"
SUBSCRIBER = f"{CANARY.lower()}.abonne@example.org"
LATE = paris(2024, 12, 2, 9, 0)
QUOTIENT = 1379  # bracket C of the billing test tariff
PASSWORD = "une phrase solide pour " + CANARY


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


IBAN = _iban("FR", "1751500000" + "0841" + "7392" + "5066" + "1")  # a checksum-valid French IBAN
QUOTIENT_RE = re.compile(rf"(?<![0-9a-fA-F]){QUOTIENT}(?![0-9a-fA-F])")


def _needles() -> list[str]:
    spaced = " ".join(IBAN[i : i + 4] for i in range(0, len(IBAN), 4))
    return [CANARY.lower(), EMAIL, SUBSCRIBER, IBAN.lower(), spaced.lower(), IBAN[4:].lower()]


def _hits(where: str, text: str) -> list[str]:
    low = text.lower()
    found = [f"{where}: {n!r}" for n in _needles() if n in low]
    if QUOTIENT_RE.search(text):
        found.append(f"{where}: quotient {QUOTIENT}")
    return found


def _user(email, password="x" * 12):
    return get_user_model().objects.create_user(email, email, password)


def _staff(org, email, *kinds):
    user = _user(email)
    for kind in kinds:
        StaffRole.objects.create(user=user, organisation=org, kind=kind, granted_at=F.NOW)
    return user


@pytest.fixture
def everything(settings, tmp_path, caplog):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.GUICHET_PUBLIC_URL = "https://guichet.example.fr"
    caplog.set_level(logging.DEBUG)
    return caplog


def test_the_canary_never_reaches_logs_journal_backup_manifest_or_error_pages(
    client, everything, tmp_path
):
    pages: list[tuple[str, str]] = []  # error pages: (what, html)
    outputs: list[tuple[str, str]] = []  # commands' output

    # --- accounts: sign-up, verification -------------------------------------------------------
    client.post(
        reverse("accounts:signup"), {"email": EMAIL, "password1": PASSWORD, "password2": PASSWORD}
    )
    link = (
        next(m for m in mail.outbox if EMAIL in m.to)
        .body.split("https://guichet.example.fr")[1]
        .split()[0]
    )
    client.post(link)
    parent = get_user_model().objects.get(email=EMAIL)
    parent.first_name, parent.last_name = CANARY, f"Dupont-{CANARY}"
    parent.save()

    # --- bookings: a family with the canary everywhere -------------------------------------------
    world = World(capacity=1)
    session = world.session()
    household, (child,) = world.household()
    household.display_name, household.email = f"Famille {CANARY}", EMAIL
    household.save()
    child.first_name, child.school = f"Léa{CANARY}", f"École {CANARY}"
    child.save()
    Guardian.objects.create(organisation=world.org, household=household, user=parent)
    waiting, (waiting_child,) = world.household()
    waiting.display_name, waiting.email = (
        f"Famille Attente {CANARY}",
        f"{CANARY.lower()}.attente@example.org",
    )
    waiting.save()
    waiting_child.first_name = f"Tom{CANARY}"
    waiting_child.save()
    client.force_login(parent)
    p = world.portal.slug
    with time_machine.travel(BEFORE, tick=False):
        client.post(
            f"/{p}/famille/panier/",
            {
                "mode": "partial",
                "idempotency_key": f"k-{CANARY}",
                f"item-{child.pk}-{session.pk}": "journee",
            },
        )
        world.submit(
            waiting,
            [{"child": waiting_child.pk, "session": session.pk, "unit": "journee"}],
            key="w",
        )
    booking = Booking.objects.get(child=child)
    assert (
        booking.status == "booked"
        and WaitlistEntry.objects.get(child=waiting_child).status == "waiting"
    )
    with time_machine.travel(LATE, tick=False):
        client.post(reverse("bookings:cancel", args=[p, booking.pk]))
        upload = SimpleUploadedFile(
            f"certificat-{CANARY}-{EMAIL}.pdf",
            b"%PDF-1.4\n% Certificat medical de " + CANARY.encode() + b"\n%%EOF\n",
        )
        r = client.post(
            reverse("bookings:justify", args=[p, booking.pk]),
            {"kind": "medical", "document": upload},
        )
        assert r.status_code == 200, r.content.decode()[:300]
    assert WaitlistEntry.objects.get(child=waiting_child).status == "offered"

    # --- status: subscription with double opt-in -----------------------------------------------------
    status.publish_now(
        portal_slug=p,
        actor=F.ACTOR,
        title="Catalogue",
        operations=[
            {
                "op": "service.set",
                "organisation": world.org.slug,
                "slug": "enfance",
                "name": "Enfance",
            }
        ],
    )
    client.post(f"/{p}/status/subscribe/", {"email": SUBSCRIBER, "service": ""})
    confirm = next(m for m in mail.outbox if SUBSCRIBER in m.to).body
    client.post(
        re.search(r"https://guichet\.example\.fr(/\S*/subscriptions/confirm/\S+/)", confirm).group(
            1
        )
    )

    # --- the family's data: download, erasure request --------------------------------------------------
    assert (
        client.get(reverse("accounts:family-data", args=[p]), {"download": "json"}).status_code
        == 200
    )
    client.post(reverse("accounts:family-erasure", args=[p]))
    client.post(
        reverse("bookings:address", args=[p]),
        {"postal_address": f"3 rue {CANARY}\n44600 Saint-Nazaire"},
    )
    assert CANARY in Household.objects.get(pk=household.pk).postal_address
    client.post(
        reverse("accounts:invite", args=[p]), {"email": f"{CANARY.lower()}.second@example.org"}
    )

    # --- billing: quotient, deposit, payment, run, PDF, treasury ----------------------------------------
    town = billed_town(ref="F001")
    town.household.display_name, town.household.email = f"Famille {CANARY}", EMAIL
    town.household.postal_address = f"3 rue {CANARY}\n44600 Saint-Nazaire"
    town.household.save()
    town.child.first_name = f"Léa{CANARY}"
    town.child.save()
    billing.quotient_record(
        household=town.household,
        valid_from=dt.date(2024, 12, 1),
        quotient=QUOTIENT,
        resources_cents=QUOTIENT * 100 + 7,
        dependent_children=2,
        actor=F.ACTOR,
        now=F.NOW,
    )
    finance = _staff(town.org, f"{CANARY.lower()}.compta@example.org", "finance", "counter")
    client.force_login(finance)
    args = [town.org.portal.slug, town.org.slug]
    client.get(reverse("billing:staff-household", args=args + ["F001"]))
    client.post(
        reverse("billing:staff-deposit", args=args + ["F001"]),
        {
            "amount": "12,00",
            "method": "cheque",
            "reference": f"Chèque {CANARY}",
            "key": "dep-canary",
        },
    )
    client.post(
        reverse("billing:staff-invoice-payment", args=args + [town.invoice.pk]),
        {
            "amount": "5,00",
            "method": "cheque",
            "reference": f"Chèque {CANARY} 2",
            "key": "pay-canary",
        },
    )
    assert (
        client.get(reverse("billing:staff-invoice-pdf", args=args + [town.invoice.pk])).status_code
        == 200
    )
    assert client.get(reverse("billing:staff-treasury", args=args)).status_code == 200
    F.book(
        town.child,
        F.session(town.org, town.site, town.acts["mercredis"], dt.date(2024, 11, 6)),
        "journee",
    )
    run = F.run(town.org, dt.date(2024, 11, 1), dt.date(2024, 11, 1), [town.acts["mercredis"]])
    billing.invoice_run_finalise(
        run=run, actor=F.ACTOR, now=F.NOW, issue_date=dt.date(2024, 12, 1), due_days=30
    )
    out = io.StringIO()
    call_command(
        "billing",
        "treasury-export",
        "--portal",
        town.org.portal.slug,
        "--organisation",
        town.org.slug,
        "--output",
        str(tmp_path / "tresor.csv"),
        stdout=out,
        stderr=out,
    )
    outputs.append(("billing treasury", out.getvalue()))

    # --- paper recovery: a deposit form -------------------------------------------------------------------
    client.post(
        reverse("recovery:paper-deposit", args=args),
        {
            "series": "R",
            "number": "31",
            "received_on": "2024-11-06",
            "received_time": "16:30",
            "household": "F001",
            "amount": "45,50",
            "method": "cheque",
            "reference": f"{CANARY}-77",
        },
    )
    assert (
        Payment.objects.filter(reference__contains=CANARY).count() >= 3
    )  # deposit, payment, paper form
    # --- billing API: a deposit by a script's token ---------------------------------------------------------
    raw = f"tok-{CANARY}"
    ApiToken.objects.create(user=finance, name=f"script {CANARY}", digest=ApiToken.hash(raw))
    r = client.post(
        "/api/v1/billing/deposits",
        json.dumps(
            {
                "portal": town.org.portal.slug,
                "household": "F001",
                "amount_cents": 700,
                "method": "cheque",
                "reference": f"API {CANARY}",
            }
        ),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"api-{CANARY}",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert r.status_code == 201, r.content

    # --- water: customer, mandate with the IBAN, a SEPA file ------------------------------------------------
    org = town.org
    at = dt.datetime(2023, 11, 20, 9, tzinfo=dt.UTC)
    water.creditor_set(
        organisation=org,
        name="Eau",
        creditor_id="FR72ZZZ123456",
        iban="FR7630006000000001123456786",
        actor=F.ACTOR,
        now=at,
    )
    water.tariff_set(
        organisation=org,
        valid_from=dt.date(2023, 1, 1),
        definition=TARIFF_2023,
        actor=F.ACTOR,
        now=at,
    )
    customer = water.customer_create(
        organisation=org,
        reference="C-CAN",
        name=f"M. {CANARY}",
        address=f"3 rue {CANARY}",
        billing="monthly",
        actor=F.ACTOR,
        now=at,
    )
    contract = water.contract_open(
        customer=customer,
        point_reference="P-CAN",
        address=f"3 rue {CANARY}",
        sanitation=True,
        meter_serial="M-CAN",
        diameter=15,
        start=dt.date(2023, 11, 20),
        start_index=1204,
        actor=F.ACTOR,
        now=at,
    )
    water.mandate_create(
        customer=customer,
        reference="RUM-CAN",
        signed_on=dt.date(2019, 3, 1),
        iban=IBAN,
        actor=F.ACTOR,
        now=at,
    )
    water.schedule_create(
        contract=contract,
        year=2024,
        basis=48000,
        actor=F.ACTOR,
        now=dt.datetime(2023, 12, 1, 9, tzinfo=dt.UTC),
    )
    report = water.debit_run_create(
        organisation=org,
        collection_date=dt.date(2024, 1, 10),
        due_from=dt.date(2024, 1, 1),
        due_until=dt.date(2024, 1, 28),
        idempotency_key="can-1",
        actor=F.ACTOR,
        now=dt.datetime(2024, 1, 3, 9, tzinfo=dt.UTC),
    )
    assert IBAN in bytes(report.run.xml).decode()  # the file for the bank holds it, as it must
    client.get(reverse("water:customer", args=args + ["C-CAN"]))

    # --- error pages with the canary in the URL or the body --------------------------------------------
    pages.append(("404", client.get(f"/{CANARY}/{EMAIL}/?iban={IBAN}").content.decode()))
    pages.append(
        (
            "404 family file",
            client.get(
                reverse("billing:staff-household", args=args + [CANARY]) + f"?q={EMAIL}"
            ).content.decode(),
        )
    )
    client.force_login(parent)
    pages.append(
        (
            "403",
            client.get(reverse("billing:staff-home", args=args) + f"?q={CANARY}").content.decode(),
        )
    )
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(parent)
    r = strict.post(reverse("accounts:family-erasure", args=[p]) + f"?{CANARY}", {"email": EMAIL})
    assert r.status_code == 403
    pages.append(("403 CSRF", r.content.decode()))
    r = client.post(
        "/api/v1/bookings/baskets",
        data=f'{{"email": "{EMAIL}", "name": "{CANARY}"',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=CANARY,
    )
    assert 400 <= r.status_code < 500
    pages.append((f"API {r.status_code}", r.content.decode()))
    crashing = Client(raise_request_exception=False)
    crashing.force_login(finance)
    import guichet.billing.selectors as billing_selectors

    original = billing_selectors.household_balance

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    billing_selectors.household_balance = broken
    try:
        r = crashing.get(
            reverse("billing:staff-household", args=args + ["F001"]) + f"?name={CANARY}"
        )
    finally:
        billing_selectors.household_balance = original
    assert r.status_code == 500
    pages.append(("500", r.content.decode()))

    # --- backup (before the erasure, so that the justification file is in it) ------------------------------------------------------------------------------------------------
    key = tmp_path / "backup.key"
    call_command("backup", "keygen", str(key), stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "backup", "create", str(tmp_path / "a.gbak"), "--key-file", str(key), stdout=out, stderr=out
    )
    outputs.append(("backup create", out.getvalue()))
    summary = bk.verify_backup(archive=tmp_path / "a.gbak", key=bk.load_key(str(key)))
    manifest = json.dumps(summary.manifest, ensure_ascii=False)
    assert any(m["path"].startswith("media/justifications/") for m in summary.manifest["media"])

    # --- erasure executed by an agent -----------------------------------------------------------------------
    agent = _user(f"{CANARY.lower()}.agent@example.org")
    AgentRole.objects.create(organisation=world.org, user=agent)
    client.force_login(agent)
    from guichet.accounts.models import ErasureRequest

    req = ErasureRequest.objects.get(household_id=household.pk)
    assert client.get(reverse("accounts:staff-erasure", args=[p, req.pk])).status_code == 200
    with time_machine.travel(LATE, tick=False):
        # the cancelled booking is past its deadline but the day is still ahead: erasure waits
        r = client.post(
            reverse("accounts:staff-erasure", args=[p, req.pk]),
            {"action": "erase", "confirm": "yes"},
        )
    assert r.status_code in (302, 400)
    r = client.post(
        reverse("accounts:staff-erasure", args=[p, req.pk]), {"action": "erase", "confirm": "yes"}
    )
    assert r.status_code == 302
    assert ErasureRequest.objects.get(pk=req.pk).erased_at is not None

    # --- the search ----------------------------------------------------------------------------------------------
    hits = []
    records = everything.records
    assert len(records) > 10  # the flows did log (requests refused, e-mails sent, runs...)
    for rec in records:
        text = rec.getMessage() + (
            logging.Formatter().formatException(rec.exc_info) if rec.exc_info else ""
        )
        hits += _hits(f"log {rec.name}", text)
    for entry in Entry.objects.values():
        hits += _hits(
            f"journal {entry['operation']}", json.dumps(entry, default=str, ensure_ascii=False)
        )
    assert Entry.objects.count() > 30
    # A payload is kept only as its digest: an unkeyed hash of a guessable payload (an address
    # alone) would tell whoever holds a dump that this address signed up or was invited.
    digests = set(Entry.objects.values_list("payload_digest", flat=True))
    addresses = [
        EMAIL,
        SUBSCRIBER,
        f"{CANARY.lower()}.second@example.org",
        f"{CANARY.lower()}.compta@example.org",
    ]
    hits += [f"journal payload digest of {a}" for a in addresses if digest({"email": a}) in digests]
    hits += _hits("backup manifest", manifest)
    for what, text in outputs:
        hits += _hits(f"output of {what}", text)
    for what, html in pages:
        hits += _hits(f"error page {what}", html)
    assert hits == [], "\n".join(hits)
    # The canary did go through: the family's own download holds it (control of the search).
    assert _hits("control", json.dumps({"name": f"Famille {CANARY}", "when": str(timezone.now())}))


def test_logged_paths_become_their_routes():
    from guichet.common.logfilters import UNMATCHED, WithholdPaths, route_of

    assert route_of("/accounts/verify/secret-token/") == "/accounts/verify/<str:token>/"
    assert route_of(f"/{CANARY}/nowhere/") == UNMATCHED
    line = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /accounts/verify/{CANARY}/?e={EMAIL} HTTP/1.1", "404", "12"),
        None,
    )
    assert WithholdPaths().filter(line) and CANARY not in line.getMessage()
    assert line.getMessage() == '"GET /accounts/verify/<str:token>/ HTTP/1.1" 404 12'


def test_database_errors_are_logged_without_the_values_they_quote(
    client, settings, caplog, monkeypatch
):
    """PostgreSQL quotes the refused values ("Key (email)=(...) already exists"): a 500's logged
    traceback keeps the frames and the error's class, not the message; other errors keep theirs."""
    from django.db import IntegrityError

    import guichet.billing.selectors as billing_selectors

    caplog.set_level(logging.DEBUG)
    town = billed_town(ref="F001")
    finance = _staff(town.org, "compta@example.org", "finance")
    crashing = Client(raise_request_exception=False)
    crashing.force_login(finance)
    url = reverse("billing:staff-household", args=[town.org.portal.slug, town.org.slug, "F001"])
    for error, shown in (
        (IntegrityError(f"duplicate key value: Key (email)=({EMAIL}) already exists."), False),
        (ValueError(f"a plain bug about {CANARY}"), True),
    ):

        def broken(error=error, **kwargs):
            raise error

        monkeypatch.setattr(billing_selectors, "household_balance", broken)
        caplog.clear()
        assert crashing.get(url).status_code == 500
        text = caplog.text
        assert "Traceback" in text and type(error).__name__ in text and "household_balance" in text
        assert (CANARY.lower() in text.lower()) is shown, text
