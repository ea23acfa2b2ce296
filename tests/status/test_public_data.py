"""A small Saint-Nazaire-like notice, built through ``publish_now``, shared by the public-page
and export tests (and handy to look at: see ``load`` at the bottom)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from guichet.common.actor import Actor
from guichet.status.services import publish_now

PARIS = ZoneInfo("Europe/Paris")
SLUG = "saint-nazaire"
# Wednesday 22 May 2024, 10:00 in Paris: the family desk (Mon-Fri 8:30-12:00, 13:30-17:00) is open.
NOW = dt.datetime(2024, 5, 22, 10, 0, tzinfo=PARIS)

OPS = [
    {"op": "portal.set", "name": "Saint-Nazaire", "name_en": "Saint-Nazaire",
     "not_listed_statement": "Si un service ne figure pas dans cette page, c’est qu’il fonctionne normalement.",
     "not_listed_statement_en": "If a service is not on this page, it works normally.",
     "last_checked_at": "2024-05-21T18:00:00+02:00"},
    {"op": "organisation.set", "slug": "ville", "name": "Ville de Saint-Nazaire", "name_en": "City of Saint-Nazaire",
     "kind": "city"},
    {"op": "organisation.set", "slug": "agglo", "name": "Saint-Nazaire agglomération", "kind": "agglomeration",
     "position": 1},
    {"op": "service.set", "organisation": "agglo", "slug": "eau", "name": "Service de l’eau",
     "name_en": "Water service"},
    {"op": "procedure.set", "service": "eau", "slug": "facturation", "name": "Facturation et prélèvements",
     "name_en": "Billing and direct debits"},
    {"op": "service.set", "organisation": "ville", "slug": "enfance", "name": "Enfance – petite enfance",
     "position": 1},
    {"op": "procedure.set", "service": "enfance", "slug": "reglement", "name": "Payer ses factures"},
    {"op": "service.set", "organisation": "ville", "slug": "bibliotheque", "name": "Médiathèque", "position": 5},
    {"op": "contact.set", "organisation": "ville", "key": "espace-famille", "service": "enfance",
     "label": "Espace famille", "kind": "phone", "value": "02 44 73 43 00",
     "hours": [{"days": "mon-fri", "slots": ["08:30-12:00", "13:30-17:00"]}]},
    {"op": "contact.set", "organisation": "agglo", "key": "astreinte-eau", "label": "Astreinte eau",
     "label_en": "Water on-call line", "kind": "phone", "value": "06 00 00 00 01", "hours": "always",
     "temporary": True},
    {"op": "contact.set", "organisation": "agglo", "key": "clic", "label": "CLIC Pilot’âge", "kind": "phone",
     "value": "06 49 61 18 03", "hours": [{"days": "mon-sun", "except": ["thu"], "slots": ["09:00-12:00"]}]},
    {"op": "contact.set", "organisation": "ville", "key": "mediatheque", "service": "bibliotheque",
     "label": "Médiathèque Étienne-Caux", "kind": "address", "value": "6 rue Auguste-Baptiste-Anne, Saint-Nazaire",
     "hours": [{"days": "tue-sat", "slots": ["10:00-18:00"]}]},
    {"op": "incident.set", "organisation": "ville", "slug": "cyberattaque-2024", "title": "Cyberattaque",
     "title_en": "Cyberattack", "nature": "cyberattack",
     "summary": "La remise en route des outils numériques se fait progressivement.",
     "summary_en": "Digital tools are being brought back step by step.",
     "started_at": "2024-04-06T08:00:00+02:00"},
    {"op": "update.post", "incident": "cyberattaque-2024", "key": "point-mai",
     "published_at": "2024-05-21T17:00:00+02:00",
     "body": "Les audits techniques sont terminés.", "body_en": "The technical audits are over."},
    {"op": "affected.set", "incident": "cyberattaque-2024", "service": "eau",
     "headline": "Pas de facturation possible", "headline_en": "No billing possible"},
    {"op": "availability.set", "incident": "cyberattaque-2024", "service": "eau", "procedure": "facturation",
     "channel": "any", "state": "suspended",
     "explanation": "Aucune facture d’eau ne peut être créée.", "explanation_en": "No water bill can be issued.",
     "instead": "Le règlement se fera lors de la régularisation annuelle.",
     "instead_en": "Payment will be settled at the annual regularisation.",
     "since": "2024-04-06", "contacts": ["astreinte-eau"]},
    {"op": "target.set", "incident": "cyberattaque-2024", "service": "eau", "precision": "period",
     "text": "au printemps", "text_en": "in spring"},
    {"op": "target.set", "incident": "cyberattaque-2024", "service": "eau", "precision": "period",
     "text": "dans le courant de l’été", "text_en": "during the summer"},
    {"op": "affected.set", "incident": "cyberattaque-2024", "service": "enfance",
     "headline": "Facturation à l’arrêt depuis mars", "position": 1},
    {"op": "availability.set", "incident": "cyberattaque-2024", "service": "enfance", "procedure": "reglement",
     "channel": "counter", "channel_label": "Espace Famille", "state": "degraded",
     "explanation": "Acomptes uniquement.", "instead": "Venez régler des acomptes en chèque ou en espèces.",
     "contacts": ["espace-famille"]},
    {"op": "availability.set", "incident": "cyberattaque-2024", "service": "enfance", "procedure": "reglement",
     "channel": "online", "channel_label": "Espace Famille", "state": "suspended",
     "explanation": "Le paiement en ligne est impossible.", "position": 1},
    {"op": "advisory.set", "organisation": "ville", "key": "hameconnage", "kind": "phishing",
     "title": "Soyez vigilants", "title_en": "Be careful",
     "body": "De nombreuses arnaques circulent par courriel et SMS.",
     "body_en": "Many scams are going round by e-mail and text message.",
     "published_at": "2024-05-20T09:00:00+02:00"},
]


def load(now: dt.datetime = NOW):
    return publish_now(portal_slug=SLUG, operations=OPS, actor=Actor.cli(), title="Notice", now=now)


def close(now: dt.datetime = NOW):
    return publish_now(
        portal_slug=SLUG, actor=Actor.cli(), title="Close", now=now,
        operations=[{"op": "incident.close", "incident": "cyberattaque-2024", "ended_at": now.isoformat()}],
    )
