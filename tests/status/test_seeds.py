"""Both founding notices, loaded from their notice files, are shown in full on the public page
and in the JSON document: every service, procedure, channel state, fallback, phone number,
address, opening hours, date and advisory of the original texts."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import translation

from guichet.demo import DEMO_DIR
from guichet.status.models import State
from guichet.status.notice import import_notice

PARIS = ZoneInfo("Europe/Paris")

pytestmark = pytest.mark.django_db

# (service, procedure, channel, state, explanation excerpt, what-to-do-instead excerpt or "")
Row = tuple[str, str, str, str, str, str]

SAINT_NAZAIRE = {
    "file": "saint-nazaire.yaml",
    "texts": [
        # the rule, the two organisations (and the CCAS) on one page
        "Si un service proposé par la Ville ou l'Agglomération ne figure pas dans cette page, c'est qu'il fonctionne normalement",
        "Ville de Saint-Nazaire", "Saint-Nazaire agglomération (CARENE)", "CCAS de Saint-Nazaire",
        "Cyberattaque à Saint-Nazaire",
        "Un mois et demi après la cyberattaque",
        "Il n'est pas encore possible de définir un délai de rétablissement complet",
        # every front desk remains open
        "Tous les accueils restent ouverts", "Hôtel de ville", "Mairies annexes", "Accueil général de l'agglomération",
        "Accueil des services de l'eau", "Accueil de l'urbanisme", "Relais petite enfance", "Conservatoire", "Grand Café",
        # water
        "Service de l'eau et de l'assainissement", "Pas de facturation possible",
        "régularisation annuelle finale de votre échéancier",
        "Objectif : retour à la normale dans le courant de l'été",
        "Portables d'astreinte", "24 h/24 en cas d'urgence sur le réseau",
        "Trésorerie municipale de Saint-Nazaire", "demandes d'échelonnement de dette",
        # leisure centres
        "Le système de réservation fonctionne à nouveau", "Espace Famille",
        "à partir du 4 juin à 12 h 30", "dans le centre de loisirs de votre choix",
        "jusqu'à 15 jours avant le créneau réservé", "sans justificatif d'absence, les réservations seront facturées",
        "Certains ralentissements peuvent subsister", "Stages sportifs des vacances d'été",
        # childhood billing
        "Facturation à l'arrêt depuis mars", "Facturation des centres de loisirs", "Facturation de la restauration",
        "Facturation du péri-scolaire", "Facturation des crèches",
        "régler des acomptes en chèque ou en espèces à l'Espace famille", "02 44 73 43 00",
        "Les sommes non débitées seront regroupées prochainement",
        # switchboard
        "02 51 16 48 48", "réceptionnés sur des téléphones portables", "pas de transferts directs",
        "renseignés et orientés selon leurs demandes et leurs besoins",
        # CCAS
        "Les équipes sont en ordre de marche", "Bons alimentaires", "de nouveau délivrés la semaine prochaine",
        "La semaine prochaine", "Aides en numéraire", "Virements aux usagers pour les aides sur l'énergie",
        "Entrées piscine", "Aides à la tarification de l'eau", "dossiers retraites, FSL, CAF",
        "Signalements logements d'urgence",
        # CLIC
        "CLIC Pilot'âge", "60 ans et plus", "37 rue Pierre Mendès France", "06 49 61 18 03",
        "tous les matins de 9 h à 12 h, sauf le jeudi", "de 13 h 30 à 16 h 30",
        # civil status
        "enregistrées uniquement à l'hôtel de ville", "prennent plus de temps que d'habitude",
        "Inscription sur liste électorale", "Recensement citoyen", "Attestations d'accueil",
        "Toute demande effectuée par internet est suspendue", "procurations de vote issues des ambassades",
        # identity papers, planning, housing
        "Le service continue d'être assuré", "transmettre par mail", "présentés au format papier",
        "L'accueil est ouvert", "uniquement au format papier",
        "Les rendez-vous déjà fixés sont maintenus", "possibles à partir de mi-mai", "À partir de mi-mai",
        "4 avenue Commandant l'Herminier, 44605 Saint-Nazaire",
        # advisory
        "Matinée spéciale d'inscriptions du samedi 25 mai annulée",
        "prévue dans les écoles nazairiennes ce samedi 25 mai est annulée",
    ],
    "rows": [
        ("accueils", "hotel-de-ville", "counter", "normal", "Ouvert.", ""),
        ("eau", "factures", "any", "suspended", "Aucune facture d'eau et d'assainissement", "régularisation annuelle finale"),
        ("eau", "prelevements", "any", "suspended", "Aucun prélèvement", "régularisation annuelle finale"),
        ("eau", "dossiers", "phone", "degraded", "ne peuvent ni consulter ni agir informatiquement", ""),
        ("eau", "dossiers", "post", "degraded", "Joignables par voie postale", ""),
        ("eau", "dossiers", "email", "degraded", "Joignables par courriel", ""),
        ("eau", "urgences-reseau", "on_call_mobile", "normal", "restent joignables 24 h/24", ""),
        ("eau", "factures-anterieures", "other", "normal", "la trésorerie municipale de Saint-Nazaire reste votre interlocutrice", ""),
        ("centres-loisirs", "inscriptions", "online", "normal", "à partir du 4 juin à 12 h 30", ""),
        ("centres-loisirs", "matinee-inscriptions", "counter", "suspended", "ce samedi 25 mai est annulée",
         "sur le portail Espace Famille à partir du 4 juin"),
        ("centres-loisirs", "annulations", "online", "normal", "jusqu'à 15 jours avant le créneau", ""),
        ("enfance-facturation", "facturation-creches", "any", "suspended", "À l'arrêt depuis mars", "acomptes en chèque ou en espèces"),
        ("enfance-facturation", "acomptes", "counter", "normal", "Acomptes en chèque ou en espèces.", ""),
        ("standard-agglo", "appels", "phone", "degraded", "pas de transferts directs", "renseignés et orientés"),
        ("ccas", "accompagnement", "any", "normal", "en ordre de marche", ""),
        ("ccas", "bons-alimentaires", "any", "suspended", "de nouveau délivrés la semaine prochaine", ""),
        ("ccas", "entrees-piscine", "any", "suspended", "Non délivrées à ce jour", ""),
        ("clic", "accueil-public", "counter", "normal", "de 13 h 30 à 16 h 30", ""),
        ("clic", "permanence-telephonique", "phone", "normal", "sauf le jeudi", ""),
        ("etat-civil", "declarations", "counter", "degraded", "uniquement à l'hôtel de ville", "Présentez-vous à l'hôtel de ville"),
        ("etat-civil", "listes-electorales", "counter", "degraded", "le traitement prend plus de temps", ""),
        ("etat-civil", "teleservices", "online", "suspended", "Toute demande effectuée par internet", ""),
        ("etat-civil", "procurations-ambassades", "any", "suspended", "procurations de vote issues des ambassades", ""),
        ("papiers-identite", "demandes", "counter", "normal", "continue d'être assuré", ""),
        ("papiers-identite", "justificatifs", "email", "suspended", "transmettre par mail", "au format papier"),
        ("urbanisme", "autorisations", "online", "suspended", "uniquement au format papier", "Déposez votre dossier au format papier"),
        ("urbanisme", "autorisations", "paper_form", "normal", "Dépôt au format papier", ""),
        ("habitat", "nouveaux-rendez-vous", "any", "degraded", "à partir de mi-mai", "accueil de l'agglomération"),
        ("habitat", "informations-aides", "counter", "normal", "se présenter à l'accueil de l'agglomération", ""),
    ],
    # contact key -> hours lines, as shown on the English page
    "hours": {
        "clic-locaux": ["Monday to Friday: 13:30 to 16:30"],
        "clic-tel": ["Monday, Tuesday, Wednesday, Friday, Saturday, Sunday: 9:00 to 12:00"],
    },
    "services": {"accueils": "normal", "eau": "degraded", "standard-agglo": "degraded", "ccas": "degraded",
                 "etat-civil": "degraded", "enfance-facturation": "degraded", "clic": "normal"},
    "dates": {"started": dt.date(2024, 3, 1), "updates": [dt.date(2024, 5, 21)]},
    "page_dates": ["1er mars 2024", "21 mai 2024"],
    "advisories": {"matinee-speciale-annulee": "event_change"},
    "english": ["Cyberattack in Saint-Nazaire", "No billing possible", "Every front desk remains open",
                "Number back in service, without direct transfer"],
}

MAISONS_ALFORT = {
    "file": "maisons-alfort.yaml",
    "texts": [
        "Attaque informatique : le point sur vos démarches",
        "Au cours du week-end des 24 et 25 septembre 2022",
        # exchanges with the services
        "entièrement bloqué durant plus d'une semaine", "désactivées durant près de deux semaines",
        "renouvelez votre démarche", "contactés par téléphone ou par mail",
        "délais peuvent être rallongés, quel que soit le service",
        # Espace Citoyen
        "L'Espace Citoyen n'est toujours pas accessible", "travaille activement à sa reconstruction",
        "Dans les plus brefs délais",
        # general affairs
        "Carte nationale d'identité et passeport", "sans rendez-vous pour les Maisonnais du lundi au vendredi",
        "sur rendez-vous le samedi", "Pour les non-Maisonnais, la prise de rendez-vous est obligatoire du lundi au samedi",
        "traitées informatiquement par la Préfecture", "Recensement citoyen", "Inscription sur les listes électorales",
        "Demandes d'actes d'état civil", "Prise de rendez-vous en ligne", "COMEDEC",
        "Dépôt de dossier de Pacs", "Dépôt de dossier de mariage", "Demande d'attestation d'accueil",
        "Déclaration de décès", "Légalisation de signature", "Demande de certificats divers",
        "Démarche urgente possible sans rendez-vous", "01 43 96 77 01", "01 43 96 77 02",
        # childhood and education
        "Réservations à nouveau possibles sur le Portail Famille", "Portail Famille",
        "à la journée ou à la demi-journée avec repas (matin + repas ou repas + après-midi)",
        "au plus tard le dimanche qui précède le mercredi souhaité", "Accueil uniquement à la journée",
        "au plus tard le mardi précédant la semaine souhaitée",
        "au plus tard le dimanche de la semaine précédant l'accueil",
        "sauf transmission d'un justificatif médical ou d'une attestation d'événement grave",
        "envoyées aux parents au mois de décembre", "envoyées au mois de janvier",
        "En décembre 2022", "En janvier 2023", "01 43 96 77 03", "Direction Enfance-Éducation",
        # early childhood
        "Facturation à nouveau fonctionnelle", "factures de septembre, octobre et novembre sous peu",
        "Sous peu", "Dès le mois de décembre",
        # advisories
        "Demandes envoyées par mail pendant la coupure : à renouveler", "sont invités à renouveler leur démarche",
        "Protection de vos données personnelles", "n'a fait l'objet d'une fuite",
        "aucune démarche particulière à réaliser", "En règle générale, soyez vigilants",
        "Ne cliquez en aucun cas sur une pièce jointe ou un lien suspect",
    ],
    "rows": [
        ("echanges", "telephone", "phone", "normal", "bloqué durant plus d'une semaine", ""),
        ("echanges", "courriel", "email", "normal", "désactivées durant près de deux semaines", "renouvelez votre démarche"),
        ("espace-citoyen", "demarches-en-ligne", "online", "suspended", "toujours pas accessible", "Adressez-vous au service concerné"),
        ("affaires-generales", "cni-passeport", "counter", "normal", "sans rendez-vous pour les Maisonnais", ""),
        ("affaires-generales", "recensement-citoyen", "online", "suspended", "recensement citoyen en ligne", ""),
        ("affaires-generales", "listes-electorales", "online", "suspended", "listes électorales", ""),
        ("affaires-generales", "actes-etat-civil", "online", "suspended", "actes d'état civil en ligne", ""),
        ("affaires-generales", "rendez-vous-en-ligne", "online", "suspended", "prendre rendez-vous en ligne", "prenez rendez-vous par téléphone"),
        ("affaires-generales", "comedec", "other", "suspended", "par le biais de COMEDEC", ""),
        ("affaires-generales", "pacs", "phone", "degraded", "Sur rendez-vous pris par téléphone", "dossier de Pacs"),
        ("affaires-generales", "mariage", "phone", "degraded", "Sur rendez-vous pris par téléphone", "dossier de mariage"),
        ("affaires-generales", "attestations-accueil", "phone", "degraded", "Sur rendez-vous pris par téléphone", "attestation d'accueil"),
        ("affaires-generales", "declaration-deces", "counter", "normal", "sans rendez-vous", ""),
        ("enfance-education", "reservation-mercredis", "online", "normal", "Depuis le 30 novembre", ""),
        ("enfance-education", "reservation-vacances", "online", "normal", "uniquement à la journée", ""),
        ("enfance-education", "annulation", "online", "normal", "sauf transmission d'un justificatif médical", ""),
        ("enfance-education", "factures-septembre-octobre", "online", "degraded", "au mois de décembre", ""),
        ("enfance-education", "factures-novembre-decembre", "online", "degraded", "au mois de janvier", ""),
        ("petite-enfance", "factures-creches-septembre-novembre", "any", "degraded", "sous peu", ""),
        ("petite-enfance", "facturation-mensuelle", "any", "normal", "Dès le mois de décembre", ""),
    ],
    "hours": {
        "affaires-generales-tel-1": ["Monday to Friday: 8:30 to 11:00 and 13:30 to 17:00", "Saturday: 8:30 to 11:00"],
        "affaires-generales-tel-2": ["Monday to Friday: 8:30 to 11:00 and 13:30 to 17:00", "Saturday: 8:30 to 11:00"],
        "affaires-generales-accueil": [
            "Monday to Friday: 8:30 to 11:00 and 13:30 to 17:00 (residents)",
            "Saturday: 8:30 to 11:00 (residents, by appointment only)",
            "Monday to Friday: 8:30 to 11:00 and 13:30 to 17:00 (non-residents, by appointment only)",
            "Saturday: 8:30 to 11:00 (non-residents, by appointment only)",
        ],
        "enfance-education-tel": ["Monday to Friday: 8:30 to 11:30 and 13:30 to 18:00", "Saturday: 8:30 to 11:30"],
    },
    "services": {"echanges": "normal", "espace-citoyen": "suspended", "affaires-generales": "degraded",
                 "enfance-education": "degraded", "petite-enfance": "degraded"},
    "dates": {"started": dt.date(2022, 9, 24), "updates": [dt.date(2022, 12, 5)]},
    # dates as the French page writes them (the JSON has them as ISO dates, checked apart)
    "page_dates": ["24 septembre 2022", "5 décembre 2022", "30 novembre 2022", "1er décembre 2022"],
    "since": {("enfance-education", "reservation-mercredis"): "2022-11-30",
              ("petite-enfance", "facturation-mensuelle"): "2022-12-01"},
    "targets": {("enfance-education", "factures-septembre-octobre"): ("2022-12-01", "2022-12-31"),
                ("enfance-education", "factures-novembre-decembre"): ("2023-01-01", "2023-01-31")},
    "advisories": {"demandes-mail-a-renouveler": "renew_requests", "donnees-personnelles": "data_protection",
                   "vigilance-arnaques": "phishing"},
    "english": ["Cyberattack: where your procedures stand", "Stay alert to scams", "Your personal data",
                "Bookings possible again on the Portail Famille"],
}

SEEDS = {"saint-nazaire": SAINT_NAZAIRE, "maisons-alfort": MAISONS_ALFORT}


def _text(response) -> str:
    """The page as a person reads it: tags removed, entities decoded, spaces collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def _load(slug: str, client, language: str = "fr"):
    path = DEMO_DIR / SEEDS[slug]["file"]
    import_notice(path.read_text(encoding="utf-8"), path.name)
    with translation.override(language):
        url = reverse("status:page", kwargs={"portal": slug})
    page = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert page.status_code == 200
    data = client.get(reverse("status:json", kwargs={"portal": slug}))
    assert data.status_code == 200
    return _text(page), data.json()


def _row(doc: dict, service: str, procedure: str, channel: str) -> tuple[dict, dict, dict]:
    s = next(s for s in doc["services"] if s["slug"] == service)
    p = next(p for p in s["procedures"] if p["slug"] == procedure)
    return s, p, next(c for c in p["channels"] if c["channel"] == channel)


def _contacts(doc: dict) -> dict[str, dict]:
    found = {}
    for s in doc["services"]:
        for c in s["contacts"]:
            found[c["key"]] = c
        for p in s["procedures"]:
            for ch in p["channels"]:
                for c in ch["contacts"]:
                    found[c["key"]] = c
    return found


@pytest.mark.parametrize("slug", SEEDS)
def test_every_text_fact_is_on_the_page_and_in_the_json(slug, client):
    page, doc = _load(slug, client)
    blob = json.dumps(doc, ensure_ascii=False)
    missing_page = [t for t in SEEDS[slug]["texts"] if t not in page]
    missing_json = [t for t in SEEDS[slug]["texts"] if t not in blob]
    assert not missing_page, f"not on the public page: {missing_page}"
    assert not missing_json, f"not in the JSON: {missing_json}"


@pytest.mark.parametrize("slug", SEEDS)
def test_every_channel_row_shows_its_state_explanation_and_fallback(slug, client):
    page, doc = _load(slug, client)
    with translation.override("fr"):
        labels = {s.value: str(s.label) for s in State}
    pattern = re.compile("|".join(map(re.escape, labels.values())))
    for service, procedure, channel, state, explanation, instead in SEEDS[slug]["rows"]:
        _s, p, row = _row(doc, service, procedure, channel)
        where = f"{service}/{procedure}/{channel}"
        assert row["state"] == state, where
        assert explanation in row["explanation"], where
        assert instead in row["instead"], where
        # On the page: the procedure's name, then this row's state label, then its explanation
        # (and what to do instead after it).
        seen = []
        for m in re.finditer(re.escape(explanation), page):
            start = page.rfind(p["name"], 0, m.start())
            if start < 0:
                continue
            shown = pattern.findall(page[start:m.start()])
            seen.append(shown[-1] if shown else None)
            if shown and shown[-1] == labels[state] and (not instead or instead in page[m.end():]):
                break
        else:
            pytest.fail(f"{where}: the page shows {seen} before the explanation, expected {labels[state]!r}")


@pytest.mark.parametrize("slug", SEEDS)
def test_service_states_are_derived_from_their_rows(slug, client):
    page, doc = _load(slug, client)
    states = {s["slug"]: s["state"] for s in doc["services"]}
    for service, expected in SEEDS[slug]["services"].items():
        assert states[service] == expected, service


@pytest.mark.parametrize("slug", SEEDS)
def test_opening_hours_are_shown(slug, client):
    page_en, doc = _load(slug, client, language="en")
    contacts = _contacts(doc)
    for key, lines in SEEDS[slug]["hours"].items():
        assert contacts[key]["hours_lines_en"] == lines, key
        for line in lines:
            assert line in page_en, f"{key}: {line!r} not on the English page"


@pytest.mark.parametrize("slug", SEEDS)
def test_english_titles_are_shown_in_english(slug, client):
    page_en, doc = _load(slug, client, language="en")
    blob = json.dumps(doc, ensure_ascii=False)
    for text in SEEDS[slug]["english"]:
        assert text in page_en
        assert text in blob


@pytest.mark.parametrize("slug", SEEDS)
def test_dates_and_advisories(slug, client):
    page, doc = _load(slug, client)
    seed = SEEDS[slug]
    (incident,) = doc["incidents"]
    started = dt.datetime.fromisoformat(incident["started_at"]).astimezone(PARIS).date()
    assert started == seed["dates"]["started"]
    updates = sorted(dt.datetime.fromisoformat(u["published_at"]).astimezone(PARIS).date() for u in incident["updates"])
    assert updates == seed["dates"]["updates"]
    for (service, procedure), since in seed.get("since", {}).items():
        s = next(s for s in doc["services"] if s["slug"] == service)
        p = next(p for p in s["procedures"] if p["slug"] == procedure)
        assert p["channels"][0]["since"] == since
    for (service, procedure), (earliest, latest) in seed.get("targets", {}).items():
        s = next(s for s in doc["services"] if s["slug"] == service)
        t = next(t for t in s["targets"] if t["procedure"] == procedure)
        assert (t["current"]["earliest"], t["current"]["latest"]) == (earliest, latest)
    for text in seed["page_dates"]:
        assert text in page
    kinds = {a["key"]: a["kind"] for a in doc["advisories"]}
    assert kinds == seed["advisories"]
    for a in doc["advisories"]:
        assert a["title"] in page


def test_phone_numbers_of_both_notices_are_all_there(client):
    numbers = {"saint-nazaire": ["02 51 16 48 48", "02 44 73 43 00", "06 49 61 18 03"],
               "maisons-alfort": ["01 43 96 77 01", "01 43 96 77 02", "01 43 96 77 03"]}
    for slug, expected in numbers.items():
        page, doc = _load(slug, client)
        values = {c["value"] for c in _contacts(doc).values()}
        for n in expected:
            assert n in page
            assert n in values
