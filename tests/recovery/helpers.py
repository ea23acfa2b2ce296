"""A town whose status board can suspend its online booking, as the editors do it."""

from __future__ import annotations

from guichet.catalog.models import Procedure
from guichet.common.actor import Actor
from guichet.recovery import services as recovery
from guichet.status.services import apply_operations
from tests.bookings.test_services import BEFORE

EDITOR = Actor(ref="user:7", channel="web")
INSTEAD = "Réservez au guichet de la mairie annexe, du lundi au vendredi de 9 h à 12 h."
EXPLANATION = "Le portail famille est fermé après la cyberattaque."


def catalogue(world) -> dict[str, Procedure]:
    """The family service and its procedures on the status board (notice vocabulary)."""
    apply_operations(portal=world.portal, actor=EDITOR, now=BEFORE, operations=[
        {"op": "service.set", "organisation": world.org.slug, "slug": "enfance", "name": "Enfance"},
        {"op": "procedure.set", "service": "enfance", "slug": "inscriptions", "name": "Inscriptions aux mercredis"},
        {"op": "procedure.set", "service": "enfance", "slug": "annulations", "name": "Annulations"},
        {"op": "procedure.set", "service": "enfance", "slug": "paiement", "name": "Paiement des factures"},
    ])
    return {p.slug: p for p in Procedure.objects.filter(service__slug="enfance")}


def configure_gates(world, procedures, *, when_degraded="warn"):
    return recovery.gates_replace(organisation=world.org, actor=EDITOR, now=BEFORE, specs=[
        recovery.GateSpec("booking", procedures["inscriptions"], world.activity, when_degraded),
        recovery.GateSpec("cancellation", procedures["annulations"], None, when_degraded),
        recovery.GateSpec("payment", procedures["paiement"], None, when_degraded),
    ])


def set_state(world, procedure_slug: str, state: str, *, channel="online", started="2024-11-20T08:00:00+01:00",
              ended=None, incident="cyberattaque"):
    incident_op = {"op": "incident.set", "organisation": world.org.slug, "slug": incident,
                   "title": "Cyberattaque", "nature": "cyberattack", "started_at": started}
    if ended:
        incident_op["ended_at"] = ended
    apply_operations(portal=world.portal, actor=EDITOR, now=BEFORE, operations=[
        incident_op,
        {"op": "availability.set", "incident": incident, "service": "enfance", "procedure": procedure_slug,
         "channel": channel, "state": state, "explanation": EXPLANATION, "instead": INSTEAD},
    ])
