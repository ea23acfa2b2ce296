"""Static export: a self-contained copy of a portal's public status, for any static host.

When the town's own systems are down, the status page must still be reachable. ``export_site``
writes plain files (HTML, CSS, Atom, JSON; no JavaScript, only relative links) that open from
disk (``file://``), from a USB key, or from any static host. They are rendered with the same
templates as the live pages, with ``static_export=True`` (forms hidden, file links instead of
server routes). See docs/static-export.md.

Layout of one portal's directory::

    index.html                  the status page, in French
    services/<slug>.html        one page per service
    en/index.html, en/services/<slug>.html, en/feed.atom     the same in English
    feed.atom                   Atom feed (French)
    poster.pdf, en/poster.pdf   the A4 poster to print at counters
    status.json                 the JSON document (guichet-status/1)
    journal-checkpoint.txt      the journal's checkpoint at export time (docs/guide-backups.md)
    style.css                   the site's stylesheet
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import translation

from guichet.catalog.models import Portal
from guichet.journal.publish import checkpoint_for_export

from . import feeds, serialize
from .poster import render_poster
from .public import StaticLinks, public_context
from .selectors import banner, page_state

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class ExportError(ValueError):
    pass


def _write(path: Path, text: str | bytes) -> Path:
    """Write atomically (a reader never sees half a file) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _safe(slug: str, what: str) -> str:
    if not _SAFE.match(slug or ""):
        raise ExportError(f"{what} '{slug}' cannot be used as a file name")
    return slug


def _stylesheet() -> bytes:
    found = finders.find("guichet/site.css")
    if not found:
        raise ExportError("the stylesheet guichet/site.css was not found")
    return Path(found).read_bytes()


def _languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def export_site(*, portal: Portal, directory: Path, now: dt.datetime, live_url: str | None = None) -> list[Path]:
    """Write (or overwrite) the static copy of ``portal`` at ``now`` into ``directory``.

    ``live_url``: optional address of the live site, shown as a "Live site" link; without it
    the export has no link to any server of the town. Returns the files written.
    """
    directory = Path(directory)
    _safe(portal.slug, "portal")
    written: list[Path] = []
    bar = banner(portal, now)
    checkpoint = checkpoint_for_export(now=now)  # the journal's head, kept wherever this copy goes
    if checkpoint is not None:
        written.append(_write(directory / "journal-checkpoint.txt", checkpoint.text()))
    for language in _languages():
        base = directory if language == "fr" else directory / language
        with translation.override(language):
            state = page_state(portal, now)
            common = {"generated_at": now, "incident_banner": bar, "journal_checkpoint": checkpoint}
            links = StaticLinks(language=language, here="index", live=live_url)
            html = render_to_string("status/page.html", public_context(state, links=links, static_export=True, **common))
            written.append(_write(base / "index.html", html))
            service_files = set()
            for ss in state.services:
                slug = _safe(ss.service.slug, "service")
                links = StaticLinks(language=language, here=f"services/{slug}", live=live_url)
                html = render_to_string(
                    "status/service.html",
                    public_context(state, links=links, static_export=True, ss=ss, **common),
                )
                written.append(_write(base / "services" / f"{slug}.html", html))
                service_files.add(f"{slug}.html")
            # A service removed since the last export must not linger.
            for old in (base / "services").glob("*.html"):
                if old.name not in service_files:
                    old.unlink()
            feed = feeds.build_feed(state, page_url="index.html", feed_url="feed.atom", language=language)
            written.append(_write(base / "feed.atom", feeds.render_feed(feed)))
            # The A4 poster, so that counters can still print it when the live site is down.
            written.append(_write(base / "poster.pdf", render_poster(portal=portal, now=now, language=language)))
            if language == "fr":
                doc = serialize.document(state, generated_at=now, links={"page": "index.html", "atom": "feed.atom"})
                written.append(_write(directory / "status.json", json.dumps(doc, ensure_ascii=False, indent=2)))
    written.append(_write(directory / "style.css", _stylesheet()))
    return written


class _RootLinks:
    static = True
    css = "style.css"
    alternates: list = []
    live = None


def export_all(*, directory: Path, now: dt.datetime, live_url: str | None = None) -> list[Path]:
    """Export every portal into ``directory/<portal-slug>/`` and an ``index.html`` listing them."""
    directory = Path(directory)
    written: list[Path] = []
    portals = list(Portal.objects.order_by("name"))
    for p in portals:
        written += export_site(portal=p, directory=directory / _safe(p.slug, "portal"), now=now, live_url=live_url)
    with translation.override(settings.LANGUAGE_CODE):
        html = render_to_string(
            "home.html",
            {"portals": portals, "static_export": True, "links": _RootLinks(), "generated_at": now},
        )
    written.append(_write(directory / "index.html", html))
    written.append(_write(directory / "style.css", _stylesheet()))
    return written
