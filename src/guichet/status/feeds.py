"""The Atom feed of a portal's status: one entry per incident, per published update and per
advisory, newest first, in the active language.

Built from ``selectors.page_state`` with Django's ``feedgenerator``. Entry ids are stable URNs
(``urn:guichet:<portal>:update:<key>``...), the same on the live site and in the static export,
so a reader that switches from one to the other does not see duplicates.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from guichet.common.i18n import pick

from .selectors import PageState
from .templatetags.status_public import format_datetime


def _urn(state: PageState, *parts: object) -> str:
    return ":".join(["urn:guichet", state.portal.slug, *(str(p) for p in parts)])


def build_feed(state: PageState, *, page_url: str, feed_url: str, language: str,
               absolute: Callable[[str], str] = lambda u: u) -> Atom1Feed:
    """``page_url``: the status page the entries link to (``#anchors`` are appended)."""
    portal = state.portal
    entries: list[dict] = []
    for iv in state.incidents:
        i = iv.incident
        title = pick(i.title, i.title_en)
        entries.append({
            "title": _("Incident: %(title)s") % {"title": title},
            "link": f"{page_url}#incident-{i.slug}",
            "description": pick(i.summary, i.summary_en),
            "unique_id": _urn(state, "incident", i.organisation.slug, i.slug),
            "pubdate": i.started_at,
            "updateddate": i.updated_at,
        })
        for u in iv.updates:
            entries.append({
                "title": _("%(title)s — update of %(date)s") % {
                    "title": title, "date": format_datetime(u.published_at)},
                "link": f"{page_url}#update-{i.slug}-{u.key}",
                "description": pick(u.body, u.body_en),
                "unique_id": _urn(state, "update", i.organisation.slug, i.slug, u.key),
                "pubdate": u.published_at,
                "updateddate": u.published_at,
            })
    for i in state.past_incidents:
        entries.append({
            "title": _("Ended: %(title)s") % {"title": pick(i.title, i.title_en)},
            "link": f"{page_url}#past-incidents",
            "description": _("This incident ended on %(date)s.") % {"date": format_datetime(i.ended_at)},
            "unique_id": _urn(state, "incident-ended", i.organisation.slug, i.slug),
            "pubdate": i.ended_at,
            "updateddate": i.ended_at,
        })
    for a in state.advisories:
        entries.append({
            "title": pick(a.title, a.title_en),
            "link": f"{page_url}#advisory-{a.key}",
            "description": pick(a.body, a.body_en),
            "unique_id": _urn(state, "advisory", a.organisation.slug, a.key),
            "pubdate": a.published_at,
            "updateddate": a.published_at,
            "categories": [a.get_kind_display()],
        })
    entries.sort(key=lambda e: e["updateddate"], reverse=True)
    feed = Atom1Feed(
        title=_("Service status — %(portal)s") % {"portal": pick(portal.name, portal.name_en)},
        link=absolute(page_url),
        description=_("What works, and how, at %(portal)s.") % {"portal": pick(portal.name, portal.name_en)},
        language=language,
        feed_url=absolute(feed_url),
        feed_guid=_urn(state, "feed", language),
    )
    for e in entries:
        feed.add_item(
            title=e["title"], link=absolute(e["link"]), description=e["description"],
            unique_id=e["unique_id"], pubdate=e["pubdate"], updateddate=e["updateddate"],
            categories=e.get("categories"),
        )
    return feed


def render_feed(feed: Atom1Feed) -> str:
    return feed.writeString("utf-8")
