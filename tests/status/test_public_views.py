"""The public pages, end to end through the test client, as a citizen reads them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.utils import translation

from guichet.catalog.hours import format_time
from guichet.common.actor import Actor
from guichet.status.models import State
from guichet.status.services import publish_now

from .test_public_data import NOW, PARIS, SLUG, close, load

PAGE = f"/{SLUG}/status/"


def fr(text):
    with translation.override("fr"):
        return translation.gettext(str(text))


def en(text):
    with translation.override("en"):
        return str(text)


@pytest.fixture
def notice(db):
    load()


@pytest.fixture
def at():
    """Freeze the clock at a Paris time: ``at(2024, 5, 22, 10, 0)``."""
    travellers = []

    def go(*args):
        t = time_machine.travel(dt.datetime(*args, tzinfo=PARIS), tick=False)
        t.start()
        travellers.append(t)

    yield go
    for t in travellers:
        t.stop()


def text_of(response) -> str:
    """The page as a reader sees it: tags removed, whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'")


def section(response, ident: str) -> str:
    html = response.content.decode()
    m = re.search(rf'<(section|article)[^>]*id="{re.escape(ident)}".*?</\1>', html, flags=re.S)
    assert m, f"no element #{ident}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(0)))


def test_status_page_shows_incident_states_as_text_and_what_to_do_instead(client, notice, at):
    at(2024, 5, 22, 10, 0)
    r = client.get(PAGE)
    assert r.status_code == 200
    page = text_of(r)
    assert "Cyberattaque" in page
    assert "La remise en route des outils numériques se fait progressivement." in page
    assert "Les audits techniques sont terminés." in page  # the timeline
    assert "21 mai 2024" in page
    water = section(r, "service-eau")
    assert "Pas de facturation possible" in water
    assert fr(State.SUSPENDED.label) in water  # a word, not only a colour
    assert "Le règlement se fera lors de la régularisation annuelle." in water
    assert "dans le courant de l’été" in water and "au printemps" in water  # target and its history
    children = section(r, "service-enfance")
    assert fr(State.DEGRADED.label) in children
    assert "Espace Famille" in children  # the channel's own label
    assert "Venez régler des acomptes en chèque ou en espèces." in children
    assert 'href="tel:+33244734300"' in r.content.decode()
    assert "02 44 73 43 00" in children
    assert "Soyez vigilants" in section(r, "advisories")
    assert 'class="icon"' in r.content.decode()  # states carry an icon too


def test_open_now_follows_the_paris_clock(client, notice, at):
    at(2024, 5, 22, 10, 0)  # Wednesday morning: the family desk is open until noon
    with translation.override("fr"):
        expected = fr("Open now, until %(time)s") % {"time": format_time(12 * 60)}
    assert expected in section(client.get(PAGE), "service-enfance")


def test_closed_contact_says_when_it_opens(client, notice, at):
    at(2024, 5, 22, 12, 30)  # lunch break
    with translation.override("fr"):
        when = fr("today at %(time)s") % {"time": format_time(13 * 60 + 30)}
        expected = fr("Closed — opens %(when)s") % {"when": when}
    assert expected in section(client.get(PAGE), "service-enfance")


def test_unlisted_services_work_normally_and_the_rule_is_stated(client, notice, at):
    at(2024, 5, 22, 10, 0)
    r = client.get(PAGE)
    other = section(r, "other-services")
    assert "Médiathèque" in other
    assert fr(State.NORMAL.label) in other
    assert "Si un service ne figure pas dans cette page, c’est qu’il fonctionne normalement." in other
    assert "Ville de Saint-Nazaire" in other and "Saint-Nazaire agglomération" in other
    assert "22 mai 2024 à 10 h" in other  # last checked: publishing counts as a check
    assert "Médiathèque" not in section(r, "services")


def test_default_sentence_when_the_portal_has_none(client, db, at):
    publish_now(portal_slug="quiet", actor=Actor.cli(), title="t", now=NOW, operations=[
        {"op": "portal.set", "name": "Quiet"},
        {"op": "organisation.set", "slug": "ville", "name": "Ville de Quiet"},
        {"op": "service.set", "organisation": "ville", "slug": "etat-civil", "name": "État civil"},
    ])
    at(2024, 5, 22, 10, 0)
    r = client.get("/quiet/status/")
    assert fr("A service that is not listed on this page works normally.") in text_of(r)
    assert fr("No incident in progress: all services work normally.") in text_of(r)
    assert "État civil" in section(r, "other-services")


def test_english_page_shows_english_texts(client, notice, at):
    at(2024, 5, 22, 10, 0)
    r = client.get(f"/en{PAGE}")
    assert r.status_code == 200
    assert '<html lang="en">' in r.content.decode()
    page = text_of(r)
    for text in ("Cyberattack", "No billing possible", "during the summer", "Water service",
                 "Payment will be settled at the annual regularisation.", "The technical audits are over.",
                 "Be careful", "If a service is not on this page, it works normally."):
        assert text in page
    assert "Facturation à l’arrêt depuis mars" in page  # no English version: French is kept
    assert "Works normally" in page


def test_language_switch_is_a_plain_form_and_leads_to_the_english_page(client, notice):
    html = client.get(PAGE).content.decode()
    form = re.search(r'<form action="/i18n/setlang/" method="post">.*?</form>', html, flags=re.S).group(0)
    assert 'name="csrfmiddlewaretoken"' in form
    assert f'name="next" value="{PAGE}"' in form
    assert 'name="language" value="en"' in form
    r = client.post("/i18n/setlang/", {"language": "en", "next": PAGE})
    assert r.status_code == 302 and r["Location"] == f"/en{PAGE}"


def test_subscribe_form_and_links(client, notice):
    html = client.get(PAGE).content.decode()
    form = re.search(r'<form class="subscribe" action="([^"]+)" method="post">(.*?)</form>', html, flags=re.S)
    assert form.group(1) == f"/{SLUG}/status/subscribe/"
    assert 'name="email"' in form.group(2) and 'name="service"' in form.group(2)
    assert '<option value="">' in form.group(2) and '<option value="eau">' in form.group(2)
    assert "csrfmiddlewaretoken" in form.group(2)
    assert f'<link rel="alternate" type="application/atom+xml" href="/{SLUG}/status/feed.atom"' in html
    assert f'href="/{SLUG}/status.json"' in html
    assert f'href="/{SLUG}/status/poster.pdf"' in html


def test_service_page_for_an_affected_service(client, notice, at):
    at(2024, 5, 22, 10, 0)
    r = client.get(f"{PAGE}services/enfance/")
    assert r.status_code == 200
    page = text_of(r)
    assert "Enfance – petite enfance" in page
    assert "Venez régler des acomptes en chèque ou en espèces." in page
    assert '<option value="enfance" selected>' in r.content.decode()
    banner = re.search(r'<div class="banner".*?</div>\s*</div>', r.content.decode(), flags=re.S).group(0)
    assert "Cyberattaque" in banner and "Service de l’eau" in banner


def test_service_page_for_a_service_that_works_normally(client, notice, at):
    at(2024, 5, 22, 11, 0)
    r = client.get(f"{PAGE}services/bibliotheque/")
    assert r.status_code == 200
    body = section(r, "service-bibliotheque")
    assert fr(State.NORMAL.label) in body
    assert fr("This service works normally.") in body
    assert "6 rue Auguste-Baptiste-Anne, Saint-Nazaire" in body
    assert format_time(10 * 60) in body  # its hours
    with translation.override("fr"):
        expected = fr("Open now, until %(time)s") % {"time": format_time(18 * 60)}
    assert expected in body


@pytest.mark.parametrize("url", [f"{PAGE}services/nope/", "/nowhere/status/", "/nowhere/",
                                 "/nowhere/status/feed.atom", "/nowhere/status.json"])
def test_unknown_things_are_404(client, notice, url):
    assert client.get(url).status_code == 404


def test_banner_while_active_and_gone_once_closed(client, notice, at):
    at(2024, 5, 22, 10, 0)
    html = client.get(f"{PAGE}services/bibliotheque/").content.decode()
    assert 'class="banner"' in html
    banner = re.search(r'<div class="banner".*?</div>\s*</div>', html, flags=re.S).group(0)
    assert "Service de l’eau" in banner and "Enfance – petite enfance" in banner
    assert f'href="{PAGE}"' in banner
    close(NOW + dt.timedelta(hours=1))
    at(2024, 5, 22, 12, 0)
    html = client.get(f"{PAGE}services/bibliotheque/").content.decode()
    assert 'class="banner"' not in html
    r = client.get(PAGE)
    assert fr("No incident in progress: all services work normally.") in text_of(r)
    assert "Cyberattaque" in section(r, "past-incidents")


def test_portal_home_leads_to_the_status_page(client, notice, at):
    at(2024, 5, 22, 10, 0)
    r = client.get(f"/{SLUG}/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "<h1>Saint-Nazaire</h1>" in html
    card = re.search(r'<a class="status-card[^"]*" href="([^"]+)">(.*?)</a>', html, flags=re.S)
    assert card.group(1) == PAGE
    assert "Cyberattaque" in card.group(2)
    for slug in ("eau", "enfance", "bibliotheque"):
        assert f'href="{PAGE}services/{slug}/"' in html
    assert "Saint-Nazaire agglomération" in text_of(r)


def test_front_page_lists_the_towns(client, notice):
    publish_now(portal_slug="maisons-alfort", actor=Actor.cli(), title="t", now=NOW,
                operations=[{"op": "portal.set", "name": "Maisons-Alfort"}])
    r = client.get("/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'href="/saint-nazaire/"' in html and 'href="/maisons-alfort/"' in html


def test_times_are_shown_in_paris_time_whatever_the_server_zone(client, notice, settings, at):
    settings.TIME_ZONE = "America/New_York"
    at(2024, 5, 22, 10, 0)
    assert "21 mai 2024 à 17 h" in section(client.get(PAGE), "timeline")
