"""The JSON document of a portal's public status (``"format": "guichet-status/1"``).

Built from ``selectors.page_state`` like every other public rendering; served at
``/<portal>/status.json`` and written to ``status.json`` by the static export. The layout is
described in docs/static-export.md ("The JSON document") (keys are stable within a format version; a breaking change
bumps the version). Texts are given in French with their English version beside them
(``*_en``, an empty string when there is none). Date-times are ISO 8601 with their offset
(UTC), dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import translation

from guichet.catalog.hours import describe, parse_schedule

from .selectors import ContactView, PageState, ServiceStatus, TargetView

FORMAT = "guichet-status/1"


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _bi(obj: Any, *fields: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in fields:
        out[f] = getattr(obj, f, "") or ""
        out[f"{f}_en"] = getattr(obj, f"{f}_en", "") or ""
    return out


def _hours_lines(data: Any, language: str) -> list[str]:
    schedule = parse_schedule(data)
    if schedule.empty:
        return []
    with translation.override(language):
        return [str(line) for line in describe(schedule)]


def contact(cv: ContactView) -> dict:
    c = cv.contact
    st = cv.state
    return {
        "key": c.key,
        "kind": c.kind,
        **_bi(c, "label"),
        "value": c.value,
        **_bi(c, "note"),
        "temporary": c.temporary,
        "valid_until": _iso(c.valid_until),
        "hours": c.hours or None,
        "hours_lines": _hours_lines(c.hours, "fr"),
        "hours_lines_en": _hours_lines(c.hours, "en"),
        "open_now": None if st is None else st.open,
        "closes_at": _iso(st.closes_at) if st else None,
        "next_open_at": _iso(st.next_open_at) if st else None,
        "access": st.access if st else None,
    }


def _target(t) -> dict:
    return {
        "precision": t.precision,
        "earliest": _iso(t.earliest),
        "latest": _iso(t.latest),
        **_bi(t, "text"),
        "recorded_at": _iso(t.recorded_at),
    }


def target(tv: TargetView) -> dict:
    return {
        "procedure": tv.current.procedure.slug if tv.current.procedure_id else None,
        "current": _target(tv.current),
        "history": [_target(t) for t in tv.history],
    }


def service(ss: ServiceStatus) -> dict:
    s = ss.service
    return {
        "slug": s.slug,
        "organisation": s.organisation.slug,
        **_bi(s, "name", "description"),
        "listed": ss.listed,
        "state": ss.state,
        "updated_at": _iso(ss.updated_at),
        "affected": [
            {"incident": a.incident.slug, **_bi(a, "headline", "details"), "updated_at": _iso(a.updated_at)}
            for a in ss.affected
        ],
        "procedures": [
            {
                "slug": pv.procedure.slug,
                **_bi(pv.procedure, "name"),
                "state": pv.state,
                "channels": [
                    {
                        "channel": r.availability.channel,
                        "label": r.availability.channel_label,
                        "label_en": r.availability.channel_label_en,
                        "state": r.state,
                        **_bi(r.availability, "explanation", "instead"),
                        "since": _iso(r.availability.since),
                        "updated_at": _iso(r.availability.updated_at),
                        "contacts": [contact(cv) for cv in r.contacts],
                    }
                    for r in pv.rows
                ],
            }
            for pv in ss.procedures
        ],
        "targets": [target(tv) for tv in ss.targets],
        "contacts": [contact(cv) for cv in ss.contacts],
    }


def document(state: PageState, *, generated_at: dt.datetime, links: dict | None = None) -> dict:
    """The whole public state of a portal as plain JSON-ready data."""
    p = state.portal
    doc: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": _iso(generated_at),
        "updated_at": _iso(state.updated_at),
        "last_checked_at": _iso(p.last_checked_at),
        "portal": {"slug": p.slug, **_bi(p, "name")},
        **_bi(p, "not_listed_statement"),
        "organisations": [
            {"slug": o.slug, **_bi(o, "name"), "kind": o.kind} for o in state.organisations
        ],
        "counts": dict(state.counts),
        "incidents": [
            {
                "slug": iv.incident.slug,
                "organisation": iv.incident.organisation.slug,
                **_bi(iv.incident, "title"),
                "nature": iv.incident.nature,
                **_bi(iv.incident, "summary"),
                "started_at": _iso(iv.incident.started_at),
                "ended_at": _iso(iv.incident.ended_at),
                "updated_at": _iso(iv.incident.updated_at),
                "service_count": iv.service_count,
                "updates": [
                    {"key": u.key, "published_at": _iso(u.published_at), **_bi(u, "body")}
                    for u in iv.updates
                ],
            }
            for iv in state.incidents
        ],
        "past_incidents": [
            {
                "slug": i.slug,
                **_bi(i, "title"),
                "nature": i.nature,
                "started_at": _iso(i.started_at),
                "ended_at": _iso(i.ended_at),
            }
            for i in state.past_incidents
        ],
        "services": [service(ss) for ss in state.services],
        "advisories": [
            {
                "key": a.key,
                "organisation": a.organisation.slug,
                "incident": a.incident.slug if a.incident_id else None,
                "kind": a.kind,
                "audience": a.audience,
                **_bi(a, "title", "body"),
                "published_at": _iso(a.published_at),
                "expires_at": _iso(a.expires_at),
            }
            for a in state.advisories
        ],
    }
    if links:
        doc["links"] = links
    return doc
