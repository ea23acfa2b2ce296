"""The printable A4 poster: a PDF that tells, in black and white, what works and whom to call."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import translation

from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.status import services
from guichet.status.poster import render_poster

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2024, 5, 22, 10, 0, tzinfo=PARIS)
PDFTOTEXT = shutil.which("pdftotext")
INC = "cyberattaque-2024"


def _row(service, procedure, state, **kw):
    return {"op": "availability.set", "incident": INC, "service": service, "procedure": procedure,
            "state": state, **kw}


def saint_nazaire_ops() -> list[dict]:
    """The Saint-Nazaire notice (May 2024), as operations: nine services listed."""
    office = [{"days": "mon-fri", "slots": ["08:30-12:00", "13:30-17:30"]}]
    ops = [
        {"op": "portal.set", "name": "Saint-Nazaire",
         "not_listed_statement": "Si un service proposé par la Ville ou l'Agglomération ne figure pas dans "
                                 "cette page, c'est qu'il fonctionne normalement, sans modification pour les usagers.",
         "not_listed_statement_en": "A City or Agglomeration service not on this page works normally."},
        {"op": "organisation.set", "slug": "ville", "name": "Ville de Saint-Nazaire"},
        {"op": "organisation.set", "slug": "agglo", "name": "Saint-Nazaire agglomération", "kind": "agglomeration"},
        {"op": "incident.set", "organisation": "ville", "slug": INC, "title": "Cyberattaque",
         "title_en": "Cyberattack", "nature": "cyberattack", "started_at": "2024-04-03T08:00:00+02:00"},
        # Water
        {"op": "service.set", "organisation": "agglo", "slug": "eau", "name": "Service de l'eau",
         "name_en": "Water service"},
        {"op": "procedure.set", "service": "eau", "slug": "facturation", "name": "Facturation et prélèvements",
         "name_en": "Bills and direct debits"},
        {"op": "procedure.set", "service": "eau", "slug": "accueil", "name": "Accueil de l'eau et de l'assainissement"},
        {"op": "procedure.set", "service": "eau", "slug": "urgences", "name": "Urgences sur le réseau"},
        {"op": "contact.set", "organisation": "agglo", "key": "astreinte-eau", "service": "eau",
         "label": "Astreinte eau (portable)", "kind": "phone", "value": "06 07 08 09 10", "hours": "always"},
        {"op": "affected.set", "incident": INC, "service": "eau", "headline": "Pas de facturation possible",
         "headline_en": "No billing possible"},
        _row("eau", "facturation", "suspended",
             explanation="Aucune facture d'eau ne peut être créée ; aucun prélèvement des mensualisés.",
             explanation_en="No water bill can be issued; no direct debit for monthly payers.",
             instead="Les sommes non débitées seront réglées lors de la régularisation annuelle.",
             instead_en="Amounts not debited will be settled at the annual regularisation."),
        _row("eau", "accueil", "degraded", channel="phone",
             explanation="Joignable par téléphone, courrier ou courriel, sans accès aux dossiers."),
        _row("eau", "urgences", "normal", channel="on_call_mobile", contacts=["astreinte-eau"]),
        {"op": "target.set", "incident": INC, "service": "eau", "precision": "period",
         "text": "dans le courant de l'été", "text_en": "during the summer"},
        # Childhood
        {"op": "service.set", "organisation": "ville", "slug": "enfance", "name": "Enfance – petite enfance – écoles"},
        {"op": "procedure.set", "service": "enfance", "slug": "facturation", "name": "Facturation"},
        {"op": "contact.set", "organisation": "ville", "key": "espace-famille", "service": "enfance",
         "label": "Espace famille", "kind": "phone", "value": "02 44 73 43 00", "hours": office},
        _row("enfance", "facturation", "suspended",
             explanation="Facturation à l'arrêt depuis mars (loisirs, restauration, périscolaire, crèches).",
             instead="Acomptes possibles en chèque ou en espèces à l'Espace famille.",
             contacts=["espace-famille"]),
        # Switchboard
        {"op": "service.set", "organisation": "agglo", "slug": "standard", "name": "Standard de l'agglomération"},
        {"op": "procedure.set", "service": "standard", "slug": "appels", "name": "Appels"},
        {"op": "contact.set", "organisation": "agglo", "key": "standard", "service": "standard",
         "label": "Standard", "kind": "phone", "value": "02 51 16 48 48", "hours": office},
        _row("standard", "appels", "degraded", channel="phone",
             explanation="Appels reçus sur des portables : pas de transfert direct.", contacts=["standard"]),
        # CCAS
        {"op": "service.set", "organisation": "ville", "slug": "ccas", "name": "CCAS"},
        {"op": "procedure.set", "service": "ccas", "slug": "bons", "name": "Bons alimentaires"},
        {"op": "procedure.set", "service": "ccas", "slug": "aides-numeraires", "name": "Aides en numéraire et virements"},
        _row("ccas", "bons", "normal", explanation="De nouveau délivrés la semaine prochaine."),
        _row("ccas", "aides-numeraires", "suspended",
             explanation="Aides énergie, entrées piscine, tarification eau, FSL, CAF : non délivrées."),
        # CLIC
        {"op": "service.set", "organisation": "agglo", "slug": "clic", "name": "CLIC Pilot'âge"},
        {"op": "procedure.set", "service": "clic", "slug": "accueil", "name": "Accueil du public"},
        {"op": "contact.set", "organisation": "agglo", "key": "clic", "service": "clic",
         "label": "Permanence téléphonique", "kind": "phone", "value": "06 49 61 18 03",
         "hours": [{"days": "mon-fri", "except": ["thu"], "slots": ["09:00-12:00"]}]},
        _row("clic", "accueil", "normal", channel="counter",
             explanation="37 rue Pierre Mendès France, 13 h 30 à 16 h 30.", contacts=["clic"]),
        # Civil status
        {"op": "service.set", "organisation": "ville", "slug": "etat-civil", "name": "État civil"},
        {"op": "procedure.set", "service": "etat-civil", "slug": "declarations", "name": "Naissances, reconnaissances, décès"},
        {"op": "procedure.set", "service": "etat-civil", "slug": "teleservices", "name": "Demandes par internet"},
        {"op": "procedure.set", "service": "etat-civil", "slug": "procurations", "name": "Procurations des ambassades"},
        _row("etat-civil", "declarations", "degraded", channel="counter",
             explanation="Uniquement à l'hôtel de ville ; plus long que d'habitude."),
        _row("etat-civil", "teleservices", "suspended", channel="online", instead="Venez à l'accueil de l'hôtel de ville."),
        _row("etat-civil", "procurations", "suspended"),
        # Identity papers
        {"op": "service.set", "organisation": "ville", "slug": "papiers", "name": "Papiers d'identité"},
        {"op": "procedure.set", "service": "papiers", "slug": "justificatifs", "name": "Justificatifs"},
        _row("papiers", "justificatifs", "degraded", channel="email",
             explanation="Aucun document reçu par courriel.", instead="Présentez vos justificatifs sur papier."),
        # Town planning
        {"op": "service.set", "organisation": "ville", "slug": "urbanisme", "name": "Urbanisme"},
        {"op": "procedure.set", "service": "urbanisme", "slug": "depots", "name": "Dépôts de demandes d'autorisation"},
        _row("urbanisme", "depots", "degraded", channel="paper_form", explanation="Uniquement au format papier."),
        # Housing
        {"op": "service.set", "organisation": "agglo", "slug": "habitat", "name": "Amélioration de l'habitat"},
        {"op": "procedure.set", "service": "habitat", "slug": "rendez-vous", "name": "Rendez-vous"},
        _row("habitat", "rendez-vous", "degraded", explanation="Rendez-vous fixés maintenus.",
             instead="Informations à l'accueil de l'agglomération, 4 avenue Commandant l'Herminier."),
        {"op": "target.set", "incident": INC, "service": "habitat", "precision": "period",
         "earliest": "2024-05-15", "text": "à partir de mi-mai"},
        # A service that works normally, not listed
        {"op": "service.set", "organisation": "ville", "slug": "bibliotheque", "name": "Médiathèque"},
        {"op": "advisory.set", "organisation": "ville", "key": "hameconnage", "kind": "phishing",
         "title": "Attention aux courriels frauduleux", "body": "Ne cliquez sur aucun lien suspect.",
         "published_at": "2024-04-05T09:00:00+02:00"},
    ]
    return ops


@pytest.fixture
def portal(db):
    services.publish_now(portal_slug="saint-nazaire", operations=saint_nazaire_ops(), actor=Actor.cli(),
                         title="Avis", now=NOW)
    return Portal.objects.get(slug="saint-nazaire")


def _pages(pdf: bytes) -> int:
    """The page count, read back from the PDF by poppler's pdfinfo."""
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo is not installed (Debian package poppler-utils)")
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def _text(pdf: bytes, tmp_path) -> str:
    if PDFTOTEXT is None:
        pytest.skip("pdftotext is not installed (Debian package poppler-utils)")
    path = tmp_path / "poster.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([PDFTOTEXT, str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


def test_seed_fits_one_a4_page_with_every_fact(portal, tmp_path):
    pdf = render_poster(portal=portal, now=NOW, language="fr")
    assert pdf.startswith(b"%PDF")
    assert _pages(pdf) == 1
    text = _text(pdf, tmp_path)
    assert "Saint-Nazaire" in text
    assert "22 mai 2024" in text or "May 22, 2024" in text
    for name in ["Service de l'eau", "Enfance", "Standard de l'agglomération", "CCAS", "CLIC Pilot'âge",
                 "État civil", "Papiers d'identité", "Urbanisme", "Amélioration de l'habitat"]:
        assert name in text, name
    for phone in ["02 44 73 43 00", "02 51 16 48 48", "06 49 61 18 03", "06 07 08 09 10"]:
        assert phone in text, phone
    for words in [fr("Suspended"), fr("Disrupted"), "Pas de facturation possible", "régularisation annuelle",
                  "dans le courant de l'été", "chèque ou en espèces", "Présentez vos justificatifs sur papier",
                  "c'est qu'il fonctionne normalement", "Médiathèque", "Attention aux courriels frauduleux"]:
        assert words in text, words
    assert "http://testserver" not in text


def test_english_poster(portal, tmp_path, settings):
    settings.GUICHET_PUBLIC_URL = "https://status.example.fr"
    pdf = render_poster(portal=portal, now=NOW, language="en")
    text = _text(pdf, tmp_path)
    assert "Services disrupted — what still works" in text
    assert "Water service" in text and "No billing possible" in text and "during the summer" in text
    assert "https://status.example.fr/en/saint-nazaire/status/" in text


def test_qr_code_points_to_the_public_page(portal, settings):
    from guichet.status.poster import poster_context, public_url
    from guichet.status.selectors import page_state

    settings.GUICHET_PUBLIC_URL = "https://status.example.fr"
    assert public_url(portal) == "https://status.example.fr/saint-nazaire/status/"
    segno_helpers = pytest.importorskip("segno.helpers")
    assert segno_helpers  # segno is there; decode the matrix we embed back to its URL:
    import segno

    ctx = poster_context(page_state(portal, NOW))
    assert ctx["url"] == "https://status.example.fr/saint-nazaire/status/"
    assert ctx["qr"].startswith("<svg") and "viewBox" in ctx["qr"]
    assert ctx["qr"] == segno.make(ctx["url"], error="m", micro=False).svg_inline(omitsize=True, border=0, dark="#000")


def test_many_services_flow_onto_a_second_page(portal, tmp_path):
    extra = []
    for i in range(30):
        extra += [
            {"op": "service.set", "organisation": "ville", "slug": f"extra-{i}", "name": f"Service annexe {i}"},
            {"op": "procedure.set", "service": f"extra-{i}", "slug": "accueil", "name": "Accueil"},
            _row(f"extra-{i}", "accueil", "degraded", explanation="Délais allongés. " * 6,
                 instead="Appelez le standard ou écrivez-nous par courrier postal."),
        ]
    services.publish_now(portal_slug="saint-nazaire", operations=extra, actor=Actor.cli(), title="Plus", now=NOW)
    pdf = render_poster(portal=portal, now=NOW, language="fr")
    assert _pages(pdf) >= 2
    text = _text(pdf, tmp_path)
    continued = re.search(r"\([^)]+\)$", fr("%(town)s — services disrupted (continued)")).group(0)
    assert "Service annexe 29" in text and continued in text
    assert re.search(r"2 ?/ ?\d", text)
    assert "c'est qu'il fonctionne normalement" in text


def test_poster_view(client, portal):
    response = client.get(reverse("status:poster", kwargs={"portal": "saint-nazaire"}))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('inline; filename="saint-nazaire-fr-status-')
    assert response.content.startswith(b"%PDF")
    english = client.get("/en/saint-nazaire/status/poster.pdf")
    assert english.status_code == 200 and 'filename="saint-nazaire-en-' in english["Content-Disposition"]
    assert client.get("/nowhere/status/poster.pdf").status_code == 404


def test_poster_without_incident_says_everything_works(db, tmp_path):
    services.publish_now(portal_slug="calme", operations=[
        {"op": "portal.set", "name": "Ville calme"},
        {"op": "organisation.set", "slug": "ville", "name": "Ville calme"},
        {"op": "service.set", "organisation": "ville", "slug": "accueil", "name": "Accueil"},
    ], actor=Actor.cli(), title="Catalogue", now=NOW)
    pdf = render_poster(portal=Portal.objects.get(slug="calme"), now=NOW, language="en")
    assert _pages(pdf) == 1
    text = _text(pdf, tmp_path)
    assert "All services work normally." in text and "Accueil" in text


@pytest.mark.parametrize(("seed", "facts"), [
    ("saint-nazaire.yaml", ["02 44 73 43 00", "02 51 16 48 48", "06 49 61 18 03", "Service de l'eau", "CCAS"]),
    ("maisons-alfort.yaml", ["01 43 96 77 01", "01 43 96 77 02", "01 43 96 77 03", "Affaires générales",
                             "Espace Citoyen"]),
])
def test_demo_seeds_print_cleanly(db, tmp_path, seed, facts):
    from guichet.demo import seed_paths
    from guichet.status.notice import import_notice

    path = next(p for p in seed_paths() if p.name == seed)
    cs = import_notice(path.read_text(encoding="utf-8"), path.name, actor=Actor.cli())
    pdf = render_poster(portal=cs.portal, now=NOW, language="fr")
    # A typical town's notice fits one A4 page (Saint-Nazaire's took three before it was
    # summarised): what is disrupted, what to do instead, the phones; the QR code for the rest.
    assert _pages(pdf) == 1
    text = _text(pdf, tmp_path)
    for fact in facts:
        assert fact in text, fact
    assert fr("Suspended") in text and fr("Disrupted") in text
    assert fr("Instead:").upper().rstrip(": \xa0") in text.upper()


def test_rows_saying_the_same_are_printed_once_naming_each_procedure():
    from guichet.status.poster import PosterRow, merge_rows

    def row(procedure, channel="", instead="Acomptes à l'Espace famille."):
        return PosterRow(procedure, channel, "suspended", "Suspendu", "", instead)

    rows = merge_rows([row("Loisirs"), row("Restauration"), row("Questions", "Téléphone"),
                       row("Questions", "Courriel"), row("Crèches", instead="Autre chose.")])
    assert len(rows) == 2
    assert rows[0].names == [{"procedure": "Loisirs", "channels": ""}, {"procedure": "Restauration", "channels": ""},
                             {"procedure": "Questions", "channels": "Téléphone, Courriel"}]
    assert rows[1].names == [{"procedure": "Crèches", "channels": ""}]


def test_first_sentence_keeps_short_texts_and_abbreviations_whole():
    from guichet.status.poster import first_sentence

    long = "Vous pouvez régler des acomptes à l'Espace famille. Les factures viendront plus tard."
    assert first_sentence(long) == "Vous pouvez régler des acomptes à l'Espace famille."
    assert first_sentence("Appelez le standard. Merci.") == "Appelez le standard. Merci."
    assert first_sentence("Tél. 02 40 00 00 00 du lundi au vendredi.") == "Tél. 02 40 00 00 00 du lundi au vendredi."


def fr(text: str) -> str:
    """A label as the French poster prints it."""
    with translation.override("fr"):
        return translation.gettext(text)
