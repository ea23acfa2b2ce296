"""The water module's demo data (loaded by ``guichet demo``): the Saint-Nazaire agglomeration's
water service (CARENE) through 2024, the year of the outage.

Four customers: Mme Martin, a monthly payer whose debits were suspended from March to June
(the worked example of ``docs/guide-water.md``); M. Bernard, a monthly payer whose August debit
was returned by his bank; Mme Leroy, invoiced twice a year; M. Petit, who moved out in
September. The story is replayed through the services with the dates of 2024, so the screens
show real runs, files and invoices. The tariff is illustrative, not the CARENE's.
"""

from __future__ import annotations

import datetime as dt

from guichet.common.actor import Actor

PORTAL, ORGANISATION = "saint-nazaire", "carene"
CREDITOR_ID = "FR72ZZZ123456"  # a well-formed identifier, not the CARENE's
CREDITOR_IBAN = "FR7630006000000001123456786"

TARIFF_2023 = {
    "headings": [
        {"code": "water", "label": "Eau potable : abonnement et consommation", "label_en": "Drinking water",
         "vat": "5.5", "subscription": {"15": "48.00", "20": "72.00", "30": "150.00", "40": "240.00"},
         "bands": [{"up_to": 120, "price": "1.4500"}, {"up_to": None, "price": "1.7500"}]},
        {"code": "agency_resource", "label": "Préservation des ressources en eau (Agence de l'eau)",
         "label_en": "Water resource levy (water agency)", "vat": "5.5", "price": "0.0700"},
        {"code": "agency_pollution", "label": "Lutte contre la pollution (Agence de l'eau)",
         "label_en": "Pollution levy (water agency)", "vat": "5.5", "price": "0.3300"},
        {"code": "sanitation", "label": "Assainissement collectif : abonnement et consommation",
         "label_en": "Sewerage", "vat": "10", "sanitation": True,
         "subscription": {"15": "36.00", "20": "36.00", "30": "60.00", "40": "90.00"}, "price": "1.9800"},
        {"code": "agency_networks", "label": "Modernisation des réseaux de collecte (Agence de l'eau)",
         "label_en": "Sewer network levy (water agency)", "vat": "10", "sanitation": True, "price": "0.1850"},
    ]
}


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def load_water_demo() -> list[str]:
    """Load the demo data (idempotent) and return one line per thing loaded, for the console."""
    from guichet.catalog.models import Organisation

    from .. import services as s
    from ..models import Creditor, Customer, Invoice

    org = Organisation.objects.filter(portal__slug=PORTAL, slug=ORGANISATION).first()
    if org is None:
        return [f"water demo: no organisation {PORTAL}/{ORGANISATION}; skipped"]
    if Creditor.objects.filter(organisation=org).exists():
        return ["water demo: already loaded"]
    actor = Actor.cli()
    d = dt.date
    take_over = d(2023, 11, 20)
    s.creditor_set(organisation=org, name="CARENE Eau et assainissement", creditor_id=CREDITOR_ID,
                   iban=CREDITOR_IBAN, bic="", actor=actor, now=_at(take_over))
    s.tariff_set(organisation=org, valid_from=d(2023, 1, 1), definition=TARIFF_2023, actor=actor, now=_at(take_over))
    people = [
        ("C-0001", "Mme Claire Martin", "12 rue de la Paix, 44600 Saint-Nazaire", "monthly", "PL-0001", "M-0001", 1204,
         48000, "FR7630004000000003123456702"),
        ("C-0002", "M. Yves Bernard", "3 avenue de la République, 44600 Saint-Nazaire", "monthly", "PL-0002", "M-0002",
         860, 36000, "FR7610096000000050123456763"),
        ("C-0003", "Mme Anne Leroy", "8 boulevard Wilson, 44600 Saint-Nazaire", "periodic", "PL-0003", "M-0003", 455,
         0, ""),
        ("C-0004", "M. Hugo Petit", "21 rue Jean Jaurès, 44600 Saint-Nazaire", "monthly", "PL-0004", "M-0004", 2310,
         30000, "FR7617515000009000041234593"),
    ]
    contracts = {}
    for ref, name, address, billing, point, meter, index, basis, iban in people:
        now = _at(take_over)
        customer = s.customer_create(organisation=org, reference=ref, name=name, address=address, billing=billing,
                                     actor=actor, now=now)
        contract = s.contract_open(customer=customer, point_reference=point, address=address, sanitation=True,
                                   meter_serial=meter, diameter=15, start=take_over, start_index=index,
                                   actor=actor, now=now)
        contracts[ref] = contract
        if iban:
            s.mandate_create(customer=customer, reference=f"RUM-CARENE-{ref}", signed_on=d(2019, 3, 1), iban=iban,
                             actor=actor, now=now)
        if billing == "monthly":
            s.schedule_create(contract=contract, year=2024, basis=basis, actor=actor, now=_at(d(2023, 12, 1)))
    # January and February: debits as usual.
    for month in (1, 2):
        s.debit_run_create(organisation=org, collection_date=d(2024, month, 10), due_from=d(2024, month, 1),
                           due_until=d(2024, month, 28), idempotency_key=f"demo-2024-{month:02d}", actor=actor,
                           now=_at(d(2024, month, 3)))
    # The outage: no debit from March to June; marked when the service came back.
    s.instalments_mark_not_collected(organisation=org, due_from=d(2024, 3, 1), due_until=d(2024, 6, 30),
                                     reason="Cyberattaque : aucun prélèvement possible", actor=actor,
                                     now=_at(d(2024, 7, 1)))
    for month in (7, 8, 9, 10):
        s.debit_run_create(organisation=org, collection_date=d(2024, month, 10), due_from=d(2024, month, 1),
                           due_until=d(2024, month, 28), idempotency_key=f"demo-2024-{month:02d}", actor=actor,
                           now=_at(d(2024, month, 3)))
        if month == 9:
            # M. Petit moves out mid-September; his final invoice settles his schedule.
            s.contract_close(contract=contracts["C-0004"], end=d(2024, 9, 15), end_index=2398,
                             issued_on=d(2024, 9, 20), actor=actor, now=_at(d(2024, 9, 16)))
        if month == 8:
            bernard = contracts["C-0002"].customer
            line = bernard.mandates.get(status="active").pk
            from ..models import DebitLine

            e2e = DebitLine.objects.get(mandate_id=line, run__collection_date=d(2024, 8, 10)).end_to_end_id
            s.debit_reject(organisation=org, end_to_end_id=e2e, reason="AM04", actor=actor, now=_at(d(2024, 8, 14)))
    s.periodic_invoice_run(organisation=org, period_start=d(2024, 1, 1), period_end=d(2024, 7, 1),
                           issued_on=d(2024, 7, 15), actor=actor, now=_at(d(2024, 7, 15)))
    s.readings_import(organisation=org, text="meter;date;index;kind\nM-0001;2024-11-18;1322;actual\n"
                      "M-0002;2024-11-18;951;actual\nM-0003;2024-12-20;530;actual\n",
                      actor=Actor(ref="cli", channel="import"), now=_at(d(2024, 11, 19)))
    report = s.regularisation_run(organisation=org, year=2024, readings_until=d(2024, 11, 30),
                                  issued_on=d(2024, 11, 25), actor=actor, now=_at(d(2024, 11, 25)))
    martin = Invoice.objects.get(schedule__contract=contracts["C-0001"], kind="regularisation")
    s.payment_plan_create(invoice=martin, count=3, first_due=d(2025, 1, 10), actor=actor, now=_at(d(2024, 12, 2)))
    s.periodic_invoice_run(organisation=org, period_start=d(2024, 7, 1), period_end=d(2025, 1, 1),
                           issued_on=d(2025, 1, 10), actor=actor, now=_at(d(2025, 1, 10)))
    n = Customer.objects.filter(organisation=org).count()
    return [f"water demo {PORTAL}/{ORGANISATION}: {n} customers, 2024 replayed (outage March-June), "
            f"regularisation of {report.invoices} schedule(s)"]
