"""Links and template context shared by the live public pages and the static export.

The same templates render both. They never call ``{% url %}`` for a public link: they ask a
*links* object, which gives server paths on the live site (``LiveLinks``) and relative file
paths in the static export (``StaticLinks``), so an exported site works from disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .selectors import PageState

LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


class LiveLinks:
    """Links of the live site (paths in the active language, from the URL configuration)."""

    static = False

    def __init__(self, portal_slug: str):
        self.portal_slug = portal_slug

    def _r(self, name: str, **kwargs) -> str:
        return reverse(f"status:{name}", kwargs={"portal": self.portal_slug, **kwargs})

    @property
    def portal(self) -> str:
        return self._r("portal")

    @property
    def page(self) -> str:
        return self._r("page")

    def service(self, slug: str) -> str:
        return self._r("service", service=slug)

    @property
    def atom(self) -> str:
        return self._r("atom")

    @property
    def json(self) -> str:
        return self._r("json")

    @property
    def poster(self) -> str:
        return self._r("poster")

    @property
    def subscribe(self) -> str:
        return self._r("subscribe")

    @property
    def css(self) -> str:
        return static("guichet/site.css")

    @property
    def home(self) -> str:
        return reverse("home")

    alternates: list = []
    live = None


@dataclass(frozen=True)
class Alternate:
    code: str
    name: str
    href: str


class StaticLinks:
    """Relative links between the files of a static export.

    Layout (see ``export.export_site``)::

        index.html  services/<slug>.html  feed.atom  poster.pdf  status.json  style.css
        en/index.html  en/services/<slug>.html  en/feed.atom  en/poster.pdf
    """

    static = True
    subscribe = None

    def __init__(self, *, language: str, here: str = "index", live: str | None = None):
        # here: "index" or "services/<slug>"
        self.language = language
        self.here = here
        depth = here.count("/") + (0 if language == "fr" else 1)
        self.root = "../" * depth
        self.prefix = "" if language == "fr" else f"{language}/"
        self.live = live

    @property
    def page(self) -> str:
        return f"{self.root}{self.prefix}index.html"

    portal = page

    def service(self, slug: str) -> str:
        return f"{self.root}{self.prefix}services/{slug}.html"

    @property
    def poster(self) -> str:
        return f"{self.root}{self.prefix}poster.pdf"

    @property
    def atom(self) -> str:
        return f"{self.root}{self.prefix}feed.atom"

    @property
    def json(self) -> str:
        return f"{self.root}status.json"

    @property
    def css(self) -> str:
        return f"{self.root}style.css"

    @property
    def home(self) -> str:
        return self.page

    @property
    def alternates(self) -> list[Alternate]:
        out = []
        for code, _name in settings.LANGUAGES:
            if code == self.language:
                continue
            prefix = "" if code == "fr" else f"{code}/"
            out.append(Alternate(code, LANGUAGE_NAMES.get(code, code), f"{self.root}{prefix}{self.here}.html"))
        return out


DEFAULT_NOT_LISTED = _("A service that is not listed on this page works normally.")


def not_listed_statement(portal) -> str:
    return portal.tr("not_listed_statement") or str(DEFAULT_NOT_LISTED)


def public_context(state: PageState, *, links, static_export: bool = False, **extra) -> dict:
    """The context every public status template receives."""
    return {
        "state": state,
        "portal": state.portal,
        "links": links,
        "static_export": static_export,
        "not_listed": not_listed_statement(state.portal),
        **extra,
    }
