"""The static export: a site that opens from disk and tells the same facts as the live page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest

from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.status.export import export_all, export_site
from guichet.status.services import publish_now

from .test_public_data import NOW, SLUG, load


@pytest.fixture
def portal(db):
    load()
    return Portal.objects.get(slug=SLUG)


def links_in(html: str) -> list[str]:
    return re.findall(r'(?:href|src|action)="([^"]*)"', html)


def test_export_writes_a_self_contained_site(portal, tmp_path):
    files = export_site(portal=portal, directory=tmp_path, now=NOW)
    names = {p.relative_to(tmp_path).as_posix() for p in files}
    assert {"index.html", "en/index.html", "services/eau.html", "services/enfance.html",
            "services/bibliotheque.html", "en/services/eau.html", "style.css", "feed.atom",
            "en/feed.atom", "status.json"} <= names
    assert all(p.is_file() for p in files)
    for html_file in tmp_path.rglob("*.html"):
        html = html_file.read_text()
        assert "<script" not in html.lower()
        assert "<form" not in html  # nothing to post to without a server
        for link in links_in(html):
            scheme = urlsplit(link).scheme
            assert scheme in ("", "tel", "mailto"), f"{html_file}: {link}"
            assert not link.startswith("/"), f"{html_file}: absolute path {link}"
            path = link.split("#")[0]
            if not scheme and path:
                assert (html_file.parent / path).resolve().is_file(), f"{html_file}: broken link {link}"


def test_exported_pages_tell_the_same_facts(portal, tmp_path):
    export_site(portal=portal, directory=tmp_path, now=NOW)
    index = (tmp_path / "index.html").read_text()
    for fact in ("Cyberattaque", "Pas de facturation possible", "Le règlement se fera lors de la régularisation annuelle.",
                 "Venez régler des acomptes en chèque ou en espèces.", "02 44 73 43 00", 'href="tel:+33244734300"',
                 "dans le courant de l’été", "Soyez vigilants", "Médiathèque", "Les audits techniques sont terminés.",
                 "Si un service ne figure pas dans cette page"):
        assert fact in index, fact
    assert '<html lang="fr">' in index
    assert 'href="en/index.html"' in index  # the language switch is a plain link
    assert 'href="services/eau.html"' in index
    english = (tmp_path / "en" / "index.html").read_text()
    assert '<html lang="en">' in english
    assert "No billing possible" in english and "during the summer" in english
    assert 'href="../index.html"' in english and 'href="../style.css"' in english
    service = (tmp_path / "en" / "services" / "eau.html").read_text()
    assert "Water service" in service and 'href="../../services/eau.html"' in service
    assert 'class="banner"' in service
    doc = json.loads((tmp_path / "status.json").read_text())
    assert doc["format"] == "guichet-status/1"
    assert {s["slug"]: s["state"] for s in doc["services"]}["eau"] == "suspended"
    feed = ET.fromstring((tmp_path / "feed.atom").read_bytes())
    assert len(feed.findall("{http://www.w3.org/2005/Atom}entry")) == 3
    assert (tmp_path / "style.css").read_text().startswith("/*")


def test_export_is_idempotent(portal, tmp_path):
    first = export_site(portal=portal, directory=tmp_path, now=NOW)
    before = {p: p.read_bytes() for p in first}
    (tmp_path / "services" / "gone.html").write_text("stale")
    second = export_site(portal=portal, directory=tmp_path, now=NOW)
    assert sorted(first) == sorted(second)
    assert {p: p.read_bytes() for p in second} == before
    assert not (tmp_path / "services" / "gone.html").exists()
    assert not list(tmp_path.rglob(".tmp-*"))


def test_live_link_only_when_asked(portal, tmp_path):
    export_site(portal=portal, directory=tmp_path, now=NOW, live_url="https://www.example.org/saint-nazaire/")
    assert 'href="https://www.example.org/saint-nazaire/"' in (tmp_path / "index.html").read_text()


def test_export_all_writes_an_index_of_portals(portal, tmp_path):
    publish_now(portal_slug="maisons-alfort", actor=Actor.cli(), title="t", now=NOW,
                operations=[{"op": "portal.set", "name": "Maisons-Alfort"}])
    export_all(directory=tmp_path, now=NOW)
    index = (tmp_path / "index.html").read_text()
    assert 'href="saint-nazaire/index.html"' in index and 'href="maisons-alfort/index.html"' in index
    assert 'href="style.css"' in index and (tmp_path / "style.css").is_file()
    assert (tmp_path / "maisons-alfort" / "index.html").is_file()
    assert "<script" not in index



def test_the_export_carries_the_poster_to_print(portal, tmp_path):
    export_site(portal=portal, directory=tmp_path, now=NOW)
    for pdf in (tmp_path / "poster.pdf", tmp_path / "en" / "poster.pdf"):
        assert pdf.read_bytes().startswith(b"%PDF")
    assert 'href="poster.pdf"' in (tmp_path / "index.html").read_text()
    assert 'href="../poster.pdf"' in (tmp_path / "services" / "eau.html").read_text()
