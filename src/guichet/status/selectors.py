"""What the public sees: one tree built once, rendered as HTML, JSON, Atom, PDF and static files."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import Q

from guichet.catalog.hours import OpenState, describe, open_state, parse_schedule
from guichet.catalog.models import ContactPoint, Organisation, Portal, Procedure, Service

from . import rules
from .models import Advisory, AffectedService, Availability, Incident, RestorationTarget

PARIS = ZoneInfo("Europe/Paris")



@dataclass
class ContactView:
    contact: ContactPoint
    hours: list[str]
    state: OpenState | None  # None when the contact has no hours


@dataclass
class ChannelRow:
    availability: Availability
    contacts: list[ContactView]

    @property
    def state(self) -> str:
        return self.availability.state


@dataclass
class ProcedureView:
    procedure: Procedure
    rows: list[ChannelRow]

    @property
    def state(self) -> str:
        return rules.rollup(r.state for r in self.rows)


@dataclass
class TargetView:
    current: RestorationTarget
    history: list[RestorationTarget]  # earlier revisions, newest first


@dataclass
class ServiceStatus:
    service: Service
    state: str
    affected: list[AffectedService]
    procedures: list[ProcedureView]
    targets: list[TargetView]
    contacts: list[ContactView]
    updated_at: dt.datetime | None

    @property
    def listed(self) -> bool:
        return bool(self.affected)


@dataclass
class IncidentView:
    incident: Incident
    updates: list
    service_count: int


@dataclass
class PageState:
    portal: Portal
    now: dt.datetime
    organisations: list[Organisation]
    incidents: list[IncidentView]
    past_incidents: list[Incident]
    services: list[ServiceStatus]  # every catalogued service, listed ones first
    advisories: list[Advisory]
    updated_at: dt.datetime | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def listed(self) -> list[ServiceStatus]:
        return [s for s in self.services if s.listed]

    @property
    def unlisted(self) -> list[ServiceStatus]:
        return [s for s in self.services if not s.listed]

    def service(self, slug: str) -> ServiceStatus | None:
        return next((s for s in self.services if s.service.slug == slug), None)


def _contact_view(c: ContactPoint, now: dt.datetime) -> ContactView:
    schedule = parse_schedule(c.hours)
    if schedule.empty:
        return ContactView(c, [], None)
    return ContactView(c, describe(schedule), open_state(schedule, now))


def _contact_visible(c: ContactPoint, today: dt.date) -> bool:
    return c.valid_until is None or c.valid_until >= today


def page_state(portal: Portal, now: dt.datetime) -> PageState:
    """The whole public page of a portal at ``now``."""
    today = now.astimezone(PARIS).date()
    organisations = list(Organisation.objects.filter(portal=portal))
    incidents = list(
        Incident.objects.filter(organisation__portal=portal, started_at__lte=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=now))
        .select_related("organisation")
        .prefetch_related("updates")
    )
    active_ids = [i.pk for i in incidents]
    past = list(
        Incident.objects.filter(organisation__portal=portal, ended_at__lte=now).order_by("-ended_at")[:5]
    )
    services = list(
        Service.objects.filter(organisation__portal=portal)
        .select_related("organisation")
        .prefetch_related("procedures", "contacts")
    )
    affected = defaultdict(list)
    for a in AffectedService.objects.filter(incident_id__in=active_ids).select_related("incident"):
        affected[a.service_id].append(a)
    rows_by_proc = defaultdict(list)
    for av in (
        Availability.objects.filter(incident_id__in=active_ids)
        .select_related("procedure")
        .prefetch_related("contacts")
        .order_by("procedure__position", "position", "pk")
    ):
        contacts = [_contact_view(c, now) for c in av.contacts.all() if _contact_visible(c, today)]
        rows_by_proc[av.procedure_id].append(ChannelRow(av, contacts))
    targets = defaultdict(list)
    for t in RestorationTarget.objects.filter(incident_id__in=active_ids).select_related("procedure").order_by(
        "-recorded_at", "-pk"
    ):
        targets[(t.service_id, t.procedure_id)].append(t)

    out = []
    for s in services:
        procs = [ProcedureView(p, rows_by_proc[p.pk]) for p in s.procedures.all() if rows_by_proc[p.pk]]
        all_rows = [r.state for pv in procs for r in pv.rows]
        tviews = [
            TargetView(ts[0], ts[1:])
            for (sid, _pid), ts in sorted(targets.items(), key=lambda kv: (kv[0][1] is not None, kv[0][1] or 0))
            if sid == s.pk
        ]
        stamps = [a.updated_at for a in affected[s.pk]]
        stamps += [r.availability.updated_at for pv in procs for r in pv.rows]
        stamps += [tv.current.recorded_at for tv in tviews]
        out.append(
            ServiceStatus(
                service=s,
                state=rules.rollup(all_rows),
                affected=affected[s.pk],
                procedures=procs,
                targets=tviews,
                contacts=[_contact_view(c, now) for c in s.contacts.all() if _contact_visible(c, today)],
                updated_at=max(stamps) if stamps else None,
            )
        )
    out.sort(key=lambda ss: (not ss.listed, min((a.position for a in ss.affected), default=0)))
    advisories = list(
        Advisory.objects.filter(organisation__portal=portal, published_at__lte=now)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("organisation")
    )
    views = [
        IncidentView(i, list(i.updates.all()), sum(1 for ss in out for a in ss.affected if a.incident_id == i.pk))
        for i in incidents
    ]
    stamps = [i.updated_at for i in incidents] + [a.published_at for a in advisories]
    counts = {k: 0 for k in rules.SEVERITY}
    for ss in out:
        counts[ss.state] += 1
    return PageState(
        portal=portal,
        now=now,
        organisations=organisations,
        incidents=views,
        past_incidents=past,
        services=out,
        advisories=advisories,
        updated_at=max(stamps) if stamps else None,
        counts=counts,
    )


def banner(portal: Portal, now: dt.datetime) -> dict | None:
    """The short banner shown on every page of a portal while an incident is active."""
    incidents = list(
        Incident.objects.filter(organisation__portal=portal, started_at__lte=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=now))
    )
    if not incidents:
        return None
    affected = (
        Service.objects.filter(pk__in=AffectedService.objects.filter(incident__in=incidents).values("service"))
        .distinct()
    )
    return {"incidents": incidents, "services": list(affected)}


def contacts_shown_nowhere(portal: Portal) -> list[ContactPoint]:
    """Contacts of the page attached to no service and named by no availability row: the public
    pages never show them (``guichet status import`` and the editor's dashboard warn about them)."""
    named = (
        Availability.objects.filter(organisation__portal=portal, contacts__isnull=False)
        .values_list("contacts", flat=True)
    )
    return list(
        ContactPoint.objects.filter(organisation__portal=portal, service__isnull=True)
        .exclude(pk__in=named)
        .select_related("organisation")
        .order_by("organisation__position", "position", "pk")
    )
