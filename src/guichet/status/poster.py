"""The printable A4 poster for counters and doors: what is disrupted, what to do instead, whom to
call, and a QR code to the live page. Rendered from ``selectors.page_state`` with WeasyPrint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import segno
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from guichet.catalog.models import Portal
from guichet.common.frdates import format_date_fr
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
    # Other procedures (or channels) in the same state with the same words, printed together.
    others: list[tuple[str, str]] = field(default_factory=list)

    @property
    def names(self) -> list[dict]:
        """``[{"procedure": ..., "channels": "phone, post"}]``: one entry per procedure."""
        out: list[dict] = []
        for procedure, channel in [(self.procedure, self.channel), *self.others]:
            if out and out[-1]["procedure"] == procedure:
                out[-1]["channels"] = ", ".join(c for c in (out[-1]["channels"], channel) if c)
            else:
                out.append({"procedure": procedure, "channels": channel})
        return out


def merge_rows(rows: list[PosterRow]) -> list[PosterRow]:
    """Rows that say the same (state, explanation, what to do instead) become one row naming
    each procedure: nothing is lost, and four "pay a deposit at the family office" become one."""
    merged: dict[tuple[str, str, str], PosterRow] = {}
    for row in rows:
        key = (row.state, row.explanation, row.instead)
        if key in merged:
            merged[key].others.append((row.procedure, row.channel))
        else:
            merged[key] = row
    return list(merged.values())


@dataclass
class PosterContact:
    contact: object  # a catalog ContactPoint
    hours: list[str]
    note: bool  # print the contact's note


@dataclass
class PosterService:
    name: str
    state: str
    state_label: str
    headline: str
    rows: list[PosterRow]  # what is disrupted or suspended, and what to do instead
    target: str
    contacts: list[PosterContact] = field(default_factory=list)
    working: list[PosterRow] = field(default_factory=list)  # what works normally, set as one paragraph


def _tr(obj, name: str) -> str:
    return pick(getattr(obj, name, "") or "", getattr(obj, f"{name}_en", "") or "")


def _date(value: dt.date) -> str:
    return format_date_fr(value)


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


DETAILS = ("full", "brief", "summary")
"""How much of each service the poster prints, from everything to what fits a door:

* ``full``: every row with its explanation and what to do instead, every contact with its hours;
* ``brief``: services that work normally join the "working normally" line; explanations and
  instructions keep their first sentence; procedures that work are named without comment;
  a contact keeps its first opening line;
* ``summary``: only what is disrupted and what to do instead (first sentence), and at most two
  contacts per service, without hours. The QR code leads to the rest.
"""


def first_sentence(text: str) -> str:
    """The first sentence of a text ("Appelez le 02 40 00 00 00. Les courriers..." -> the call),
    kept whole when it is short or when cutting would leave an abbreviation ("Tél.")."""
    match = re.search(r"[.!?…](?=\s+[A-ZÀ-ÖØ-Ý«\"])", text)
    if match is None or match.end() < 25:
        return text
    return text[: match.end()]


def _service_view(ss: ServiceStatus, detail: str = "full") -> PosterService:
    brief = detail != "full"
    short = first_sentence if brief else (lambda text: text)
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
                explanation="" if detail == "summary" else short(_tr(av, "explanation")),
                instead=short(_tr(av, "instead")),
            )
            if brief and row.state == "normal":
                row.explanation = row.instead = ""
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
        rows=merge_rows(rows),
        working=[] if detail == "summary" else working,
        target=target_text(target.current) if target else "",
        contacts=_poster_contacts(contacts.values(), detail),
    )


def _poster_contacts(contacts, detail: str) -> list[PosterContact]:
    ordered = sorted(contacts, key=lambda cv: (cv.contact.kind != "phone", cv.contact.position))
    if detail == "summary":
        return [PosterContact(cv.contact, [], False) for cv in ordered[:2]]
    if detail == "brief":
        return [PosterContact(cv.contact, cv.hours[:1], False) for cv in ordered]
    return [PosterContact(cv.contact, list(cv.hours), True) for cv in ordered]


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


def _working_name(ss: ServiceStatus) -> str:
    """"CLIC Pilot'âge (Tél. 06 49 61 18 03)": a service that works, and its first phone."""
    name = _tr(ss.service, "name")
    phone = next((c.contact for c in _service_view(ss, "summary").contacts if c.contact.kind == "phone"), None)
    return f"{name} ({_('Tel.')} {phone.value})" if phone else name


def poster_context(state: PageState, detail: str = "full") -> dict:
    portal = state.portal
    listed = list(state.listed)
    unlisted = [_tr(ss.service, "name") for ss in state.unlisted]
    if detail == "summary":
        # A listed service that works normally is named with the others that do, with its phone.
        unlisted = [_working_name(ss) for ss in listed if ss.state == "normal"] + unlisted
        listed = [ss for ss in listed if ss.state != "normal"]
    services = [_service_view(ss, detail) for ss in listed]
    url = public_url(portal)
    return {
        "portal": portal,
        "portal_name": _tr(portal, "name"),
        "incidents": [iv.incident for iv in state.incidents],
        "services": services,
        "unlisted": unlisted,
        "advisories": state.advisories,
        # When the information was given (not when it was last imported or checked).
        "updated_at": state.updated_at or portal.last_checked_at,
        "not_listed": _tr(portal, "not_listed_statement"),
        "url": url,
        "url_css": _css_string(url),
        "running_css": _css_string(_("%(town)s — services disrupted (continued)") % {"town": _tr(portal, "name")}),
        "qr": qr_svg(url),
        "columns": split_columns(services) if len(services) > 3 else None,
    }


DENSITIES = ("roomy", "comfortable", "compact", "dense", "tight")


def render_poster_html(*, portal: Portal, now: dt.datetime, language: str, density: str = "compact") -> str:
    with translation.override(language), timezone.override(PARIS):
        state = page_state(portal, now)
        return render_to_string("status/poster.html", {**poster_context(state), "language": language, "density": density})


def _layout(html: str):
    from weasyprint import HTML

    return HTML(string=html, base_url=str(settings.BASE_DIR)).render()


def render_poster(*, portal: Portal, now: dt.datetime, language: str) -> bytes:
    """The poster as PDF bytes: one A4 page, with as much detail and type as large as fit.

    The most detailed level (see ``DETAILS``) that fits one page at the densest type wins, then
    the type grows while it still fits. When even the shortest summary overflows (dozens of
    disrupted services), two newspaper columns flow onto the next pages (a row of a service is
    never split, nor a service's title from its first row).
    """
    with translation.override(language), timezone.override(PARIS):
        state = page_state(portal, now)

        def layout(detail: str, **extra):
            context = {**poster_context(state, detail), "language": language, **extra}
            return _layout(render_to_string("status/poster.html", context))

        for detail in DETAILS:
            # From the densest setting up: stop at the first that no longer fits on one page.
            best = None
            for density in reversed(DENSITIES):
                doc = layout(detail, density=density)
                if len(doc.pages) > 1:
                    break
                best = doc
            if best is not None:
                return best.write_pdf()
        # Newspaper columns: one dense page if they fit, else several pages.
        best = layout("full", density="dense", columns=None, flow=True)
        if len(best.pages) > 1:
            best = layout("full", density="compact", columns=None, flow=True)
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
