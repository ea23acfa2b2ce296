"""The printable A4 poster for counters and doors: what is disrupted, what to do instead, whom to
call, and a QR code to the live page. Rendered from ``selectors.page_state`` with WeasyPrint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import segno
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from guichet.catalog.models import Portal
from guichet.common.i18n import pick

from .models import CHANNEL_CHOICES, State
from .selectors import ContactView, PageState, ServiceStatus, page_state

PARIS = ZoneInfo("Europe/Paris")
CHANNEL_LABELS = dict(CHANNEL_CHOICES)


@dataclass
class PosterRow:
    procedure: str
    channel: str
    state: str
    state_label: str
    explanation: str
    instead: str


@dataclass
class PosterService:
    name: str
    state: str
    state_label: str
    headline: str
    rows: list[PosterRow]  # what is disrupted or suspended, and what to do instead
    target: str
    contacts: list[ContactView] = field(default_factory=list)
    working: list[PosterRow] = field(default_factory=list)  # what works normally, set as one paragraph


def _tr(obj, name: str) -> str:
    return pick(getattr(obj, name, "") or "", getattr(obj, f"{name}_en", "") or "")


def _date(value: dt.date) -> str:
    return formats.date_format(value, "DATE_FORMAT")


def target_text(target) -> str:
    """A restoration target in words: its own text, else its dates."""
    text = _tr(target, "text")
    if text:
        return text
    if target.precision == "exact" and target.earliest:
        return _date(target.earliest)
    if target.earliest and target.latest:
        return _("between %(start)s and %(end)s") % {"start": _date(target.earliest), "end": _date(target.latest)}
    if target.earliest:
        return _("from %(start)s") % {"start": _date(target.earliest)}
    if target.latest:
        return _("by %(end)s") % {"end": _date(target.latest)}
    return _("No date yet")


def _service_view(ss: ServiceStatus) -> PosterService:
    rows: list[PosterRow] = []
    working: list[PosterRow] = []
    contacts: dict[int, ContactView] = {}
    for pv in ss.procedures:
        for r in pv.rows:
            av = r.availability
            row = PosterRow(
                procedure=_tr(pv.procedure, "name"),
                channel=_tr(av, "channel_label") or ("" if av.channel == "any" else str(CHANNEL_LABELS.get(av.channel, ""))),
                state=r.state,
                state_label=str(State(r.state).label),
                explanation=_tr(av, "explanation"),
                instead=_tr(av, "instead"),
            )
            (working if row.state == "normal" and not row.instead else rows).append(row)
            for cv in r.contacts:
                contacts.setdefault(cv.contact.pk, cv)
    for cv in ss.contacts:
        contacts.setdefault(cv.contact.pk, cv)
    whole = next((tv for tv in ss.targets if tv.current.procedure_id is None), None)
    target = whole or (ss.targets[0] if ss.targets else None)
    return PosterService(
        name=_tr(ss.service, "name"),
        state=ss.state,
        state_label=str(State(ss.state).label),
        headline=next((_tr(a, "headline") for a in ss.affected if a.headline), ""),
        rows=rows,
        working=working,
        target=target_text(target.current) if target else "",
        contacts=sorted(contacts.values(), key=lambda cv: (cv.contact.kind != "phone", cv.contact.position)),
    )


def _weight(s: PosterService) -> float:
    """A rough height of a service block, in lines of about 45 characters."""
    def lines(text: str) -> int:
        return -(-len(text) // 45) if text else 0

    rows = sum(1 + lines(f"{r.procedure} {r.channel} {r.explanation}") + lines(r.instead) for r in s.rows)
    working = lines(" ".join(f"{r.procedure} {r.channel} {r.explanation}" for r in s.working))
    return 2.5 + lines(s.headline) + rows + working + (1 if s.target else 0) + 2 * len(s.contacts)


def split_columns(services: list[PosterService]) -> tuple[list[PosterService], list[PosterService]]:
    """Two columns of about the same height, reading order kept (left column first)."""
    weights = [_weight(s) for s in services]
    total = sum(weights)
    best, best_gap, run = len(services), total, 0.0
    for k in range(len(services) + 1):
        gap = abs(total - 2 * run)
        if gap < best_gap:
            best, best_gap = k, gap
        if k < len(services):
            run += weights[k]
    return services[:best], services[best:]


def public_url(portal: Portal) -> str:
    """The live status page in the active language (the QR code's target)."""
    return settings.GUICHET_PUBLIC_URL + reverse("status:page", kwargs={"portal": portal.slug})


def qr_svg(url: str) -> str:
    return segno.make(url, error="m", micro=False).svg_inline(omitsize=True, border=0, dark="#000")


def _css_string(text: str) -> str:
    """Text safe inside a double-quoted CSS string in a <style> element."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ").replace("\n", " ")


def poster_context(state: PageState) -> dict:
    portal = state.portal
    services = [_service_view(ss) for ss in state.listed]
    stamps = [t for t in (state.updated_at, portal.last_checked_at) if t]
    url = public_url(portal)
    return {
        "portal": portal,
        "portal_name": _tr(portal, "name"),
        "incidents": [iv.incident for iv in state.incidents],
        "services": services,
        "unlisted": [_tr(ss.service, "name") for ss in state.unlisted],
        "advisories": state.advisories,
        "updated_at": max(stamps) if stamps else None,
        "not_listed": _tr(portal, "not_listed_statement"),
        "url": url,
        "url_css": _css_string(url),
        "running_css": _css_string(_("%(town)s — services disrupted (continued)") % {"town": _tr(portal, "name")}),
        "qr": qr_svg(url),
        "columns": split_columns(services) if len(services) > 3 else None,
    }


DENSITIES = ("roomy", "comfortable", "compact", "dense")


def render_poster_html(*, portal: Portal, now: dt.datetime, language: str, density: str = "compact") -> str:
    with translation.override(language), timezone.override(PARIS):
        state = page_state(portal, now)
        return render_to_string("status/poster.html", {**poster_context(state), "language": language, "density": density})


def _layout(html: str):
    from weasyprint import HTML

    return HTML(string=html, base_url=str(settings.BASE_DIR)).render()


def render_poster(*, portal: Portal, now: dt.datetime, language: str) -> bytes:
    """The poster as PDF bytes: A4, in the largest type that fits one page. When even the
    densest setting overflows, two newspaper columns flow onto the next pages (a row of a
    service is never split, nor a service's title from its first row).
    """
    with translation.override(language), timezone.override(PARIS):
        state = page_state(portal, now)
        context = {**poster_context(state), "language": language}

        def layout(**extra):
            return _layout(render_to_string("status/poster.html", {**context, **extra}))

        # From the densest setting up: stop at the first that no longer fits on one page.
        best = None
        for density in reversed(DENSITIES):
            doc = layout(density=density)
            if len(doc.pages) > 1:
                break
            best = doc
        if best is None:  # newspaper columns: one dense page if they fit, else several pages
            best = layout(density="dense", columns=None, flow=True)
            if len(best.pages) > 1:
                best = layout(density="compact", columns=None, flow=True)
        return best.write_pdf()


def _cache_key(portal: Portal, language: str, now: dt.datetime) -> str:
    """Changes with every publication, and at least every 10 minutes (expiring advisories)."""
    from .models import ChangeSet

    last = (
        ChangeSet.objects.filter(portal=portal, status=ChangeSet.Status.PUBLISHED)
        .order_by("-published_at", "-pk").values_list("pk", "published_at").first()
    )
    parts = (portal.pk, portal.created_at, portal.last_checked_at, last, language, int(now.timestamp()) // 600)
    return "guichet:poster:" + hashlib.sha256(repr(parts).encode()).hexdigest()


@require_GET
def poster_pdf(request, portal):
    p = get_object_or_404(Portal, slug=portal)
    now = timezone.now()
    language = translation.get_language() or settings.LANGUAGE_CODE
    key = _cache_key(p, language, now)
    pdf = cache.get(key)
    if pdf is None:
        pdf = render_poster(portal=p, now=now, language=language)
        cache.set(key, pdf, timeout=600)
    response = HttpResponse(pdf, content_type="application/pdf")
    stamp = now.astimezone(PARIS).strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'inline; filename="{p.slug}-{language}-status-{stamp}.pdf"'
    response["Cache-Control"] = "public, max-age=60"
    return response
