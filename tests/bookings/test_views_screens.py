"""QA of the bookings screens (issue 3): units by their names, not their codes; one French date
and time format; the counter's search by name, child, e-mail; the family's calendar while the
status board suspends online booking or cancelling (the counter keeps working)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from guichet.accounts.models import RecordAccess
from guichet.bookings import services
from guichet.bookings.models import AgentRole, Booking, Child, Guardian, Household, WaitlistEntry
from guichet.bookings.search import fold, pattern
from tests.bookings.test_services import AGENT, BEFORE, WEDNESDAY, World, item
from tests.recovery.helpers import INSTEAD, catalogue, configure_gates, set_state

pytestmark = pytest.mark.django_db

LABELS = {
    "journee": ("Journée", "Full day"),
    "matin-repas": ("Matin + repas", "Morning + meal"),
    "repas-apres-midi": ("Repas + après-midi", "Meal + afternoon"),
}


@pytest.fixture
def world(db):
    w = World(capacity=1)
    for code, (fr, en) in LABELS.items():
        unit = w.units[code]
        unit.name, unit.name_en = fr, en
        unit.save()
    w.activity.name_en = "Wednesdays"
    w.activity.save()
    return w


@pytest.fixture
def agent(world, client):
    user = get_user_model().objects.create_user("agent", password="x" * 12)
    AgentRole.objects.create(organisation=world.org, user=user)
    client.force_login(user)
    client.user = user
    return client


def parent_of(world, _client, household):
    """A parent of ``household`` signed in on a browser of their own (not the agent's)."""
    user = get_user_model().objects.create_user(f"parent{household.pk}", password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=household, user=user)
    browser = Client()
    browser.force_login(user)
    return browser


def text(response) -> str:
    """What a person reads: the page without its tags (attribute values such as an option's
    submitted code are not read)."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", body))


def agent_url(world, path=""):
    return f"/manage/bookings/{world.portal.slug}/{path}"


def family_url(world, path=""):
    return f"/{world.portal.slug}/famille/{path}"


# --- 1. units by their names ---------------------------------------------------------------------


def test_agent_screens_name_the_units_never_their_codes(world, agent):
    session = world.session()
    hh, (child,) = world.household()
    other, (second,) = world.household()
    with time_machine.travel(BEFORE, tick=False):
        world.submit(hh, [item(child, session, "matin-repas")])
        world.submit(other, [item(second, session, "journee")])  # full: on the waiting list
        assert WaitlistEntry.objects.filter(household=other).exists()
        pages = {
            "household": agent.get(
                agent_url(world, f"households/{hh.reference}/?date={WEDNESDAY:%Y-%m-%d}")
            ),
            "waiting household": agent.get(agent_url(world, f"households/{other.reference}/")),
            "waiting lists": agent.get(agent_url(world, "waiting-lists/")),
            "attendance": agent.get(
                agent_url(world, f"attendance/?site={world.site.pk}&date={WEDNESDAY:%Y-%m-%d}")
            ),
        }
    for name, page in pages.items():
        assert page.status_code == 200, name
        seen = text(page)
        for code in LABELS:
            assert code not in seen, (name, code)
    assert "Matin + repas" in text(pages["household"]) and "Journée" in text(pages["waiting lists"])
    assert "Matin + repas" in text(pages["attendance"]) and "Journée" in text(
        pages["waiting household"]
    )
    # Free places per unit, named (none left: the session is full).
    assert "Journée\u00a0: 0 place restante" in text(pages["household"])


def test_units_are_named_in_the_active_language(world, agent):
    world.session()
    hh, _kids = world.household()
    url = agent_url(world, f"households/{hh.reference}/?date={WEDNESDAY:%Y-%m-%d}")
    with time_machine.travel(BEFORE, tick=False):
        french = text(agent.get(url))
        english = text(agent.get("/en" + url))
    assert "Matin + repas" in french and "Morning + meal" not in french
    assert (
        "Morning + meal" in english and "Wednesdays" in english and "Matin + repas" not in english
    )


def test_family_pages_name_the_units(world, client):
    session = world.session()
    hh, (child,) = world.household()
    parent = parent_of(world, client, hh)
    with time_machine.travel(BEFORE, tick=False):
        calendar = text(parent.get(family_url(world, "calendrier/?mois=2024-12")))
        answer = parent.post(
            family_url(world, "panier/"),
            {
                "mode": "partial",
                "idempotency_key": "k1",
                f"item-{child.pk}-{session.pk}": "matin-repas",
            },
        )
        basket = text(parent.get(answer["Location"]))
        home = text(parent.get(family_url(world)))
    for page in (calendar, basket, home):
        assert not any(code in page for code in LABELS)
    assert "Matin + repas" in calendar and "Matin + repas" in basket and "Matin + repas" in home


# --- 4. one French date and time format --------------------------------------------------------


def test_dates_and_times_are_written_the_french_way(world, client, agent):
    world.session(day=dt.date(2025, 1, 1))  # a Wednesday, the first of the month
    session = world.session()
    hh, (child,) = world.household()
    parent = parent_of(world, client, hh)
    with time_machine.travel(BEFORE, tick=False):
        week = text(parent.get(family_url(world, "calendrier/?semaine=2025-01-01")))
        answer = parent.post(
            family_url(world, "panier/"),
            {
                "mode": "partial",
                "idempotency_key": "k1",
                f"item-{child.pk}-{session.pk}": "journee",
            },
        )
        basket = text(parent.get(answer["Location"]))
    assert (
        "Mercredi 1er janvier" in week and "Semaine du 30 décembre 2024 au 5 janvier 2025" in week
    )
    assert "à 10 h" in basket and "10:00" not in basket  # received at 10:00, Paris time
    # The counter: the waiting list says when each request came, the same way.
    other, (second,) = world.household()
    with time_machine.travel(BEFORE.replace(hour=8, minute=30), tick=False):
        world.submit(other, [item(second, session)], now=BEFORE.replace(hour=8, minute=30))
        lists = text(agent.get(agent_url(world, "waiting-lists/")))
    assert "Mercredi 4 décembre 2024" in lists and "8 h 30" in lists and "08:30" not in lists


# --- 2. the counter's search -------------------------------------------------------------------


def household(world, reference, name, *, children=(), email="", guardian_email=""):
    hh = Household.objects.create(
        organisation=world.org,
        reference=reference,
        display_name=name,
        email=email,
        created_at=BEFORE,
    )
    for first_name in children:
        Child.objects.create(
            organisation=world.org,
            household=hh,
            first_name=first_name,
            birth_date=dt.date(2017, 5, 1),
        )
    if guardian_email:
        user = get_user_model().objects.create_user(
            f"g-{reference}", email=guardian_email, password="x" * 12
        )
        Guardian.objects.create(organisation=world.org, household=hh, user=user)
    return hh


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("hélène", ["A-100"]),
        ("HELENE", ["A-100"]),
        ("dupre", ["A-100"]),
        ("eloise", ["B-200"]),  # a child's first name: Éloïse
        ("ÉLOÏSE", ["B-200"]),
        ("martin@exemple", ["B-200"]),  # a guardian account's e-mail, written in capitals
        ("foyer.coeur", ["C-300"]),  # the household's own e-mail; œ is "oe"
        ("Cœur", ["C-300"]),
        ("a-1", ["A-100"]),  # a file number, from its start
        ("zzz", []),
    ],
)
def test_search_by_name_child_or_email_ignores_case_and_accents(world, agent, query, found):
    household(world, "A-100", "Famille Hélène Dupré")
    household(
        world,
        "B-200",
        "Famille Martin",
        children=["Éloïse", "Noé"],
        guardian_email="Parent.Martin@Exemple.org",
    )
    household(world, "C-300", "Famille Lebœuf", email="foyer.coeur@exemple.org")
    r = agent.get(agent_url(world), {"q": query})
    assert r.status_code == 200
    listed = re.findall(r'/households/([^/]+)/"', r.content.decode())
    assert listed == found


def test_an_exact_file_number_opens_the_file_and_a_listing_is_recorded(world, agent):
    hh = household(world, "A-100", "Famille Hélène Dupré", children=["Léa"])
    household(world, "A-1000", "Famille Autre")
    opened = agent.get(agent_url(world), {"q": "a-1000"})
    assert opened.status_code == 302 and opened["Location"].endswith("/households/A-1000/")
    assert not RecordAccess.objects.exists()  # the opened page records it, not the search
    listing = agent.get(agent_url(world), {"q": "lea"})
    assert "A-100" in listing.content.decode() and "Léa" in text(listing)
    access = RecordAccess.objects.get()
    assert (access.household_id, access.what, access.user_id) == (
        hh.pk,
        "bookings.search",
        agent.user.pk,
    )


def test_search_results_are_paginated_and_each_page_recorded(world, agent):
    for n in range(25):
        household(world, f"D-{n:03d}", f"Famille Durand {n:02d}")
    first = agent.get(agent_url(world), {"q": "durand"})
    second = agent.get(agent_url(world), {"q": "durand", "page": "2"})
    beyond = agent.get(agent_url(world), {"q": "durand", "page": "x"})  # a bad page: the first
    assert "25 dossiers famille trouvés" in text(first) and "Page 1 sur 2" in text(first)
    assert len(re.findall(r"/households/D-", first.content.decode())) == 20
    assert len(re.findall(r"/households/D-", second.content.decode())) == 5
    assert beyond.status_code == 200 and "Page 1 sur 2" in text(beyond)
    assert RecordAccess.objects.count() == 20 + 5 + 20


def test_search_stays_within_the_agents_towns_and_explains_a_short_query(world, agent):
    elsewhere = World.__new__(World)
    from guichet.catalog.models import Organisation, Portal

    portal = Portal.objects.create(slug="ailleurs", name="Ailleurs")
    elsewhere.org = Organisation.objects.create(portal=portal, slug="ailleurs", name="Ailleurs")
    household(elsewhere, "E-1", "Famille Hélène Ailleurs")
    r = agent.get(agent_url(world), {"q": "helene"})
    assert "E-1" not in r.content.decode() and "Aucun dossier famille" in text(r)
    short = agent.get(agent_url(world), {"q": "é"})
    assert short.status_code == 200 and "au moins 2\u00a0caractères" in text(short)
    long = agent.get(agent_url(world), {"q": "x" * 5000})
    assert long.status_code == 200 and not RecordAccess.objects.exists()


def test_the_database_matches_like_the_folded_text(world):
    """On both databases: a name is found by a word when, lower-cased and without accents, the
    name contains the word (the ligatures spelt out)."""
    names = [
        "Hélène",
        "ÉLOÏSE",
        "Lebœuf",
        "ÆLIS",
        "François",
        "Łukasz",
        "Ñúñez",
        "a.b+c@x-y.fr",
        "MIXED Ça",
    ]
    words = [
        "helene",
        "LÈNE",
        "eloise",
        "boeuf",
        "lebœuf",
        "aelis",
        "francois",
        "ÇOIS",
        "lukasz",
        "nunez",
        "b+c@x-y",
        "a.b",
        "ed ca",
        "xyz",
        "[a",
        "(?",
    ]
    for i, name in enumerate(names):
        Household.objects.create(
            organisation=world.org, reference=f"N{i}", display_name=name, created_at=BEFORE
        )
    for word in words:
        found = set(
            Household.objects.filter(display_name__iregex=pattern(word)).values_list(
                "display_name", flat=True
            )
        )
        assert found == {name for name in names if fold(word) in fold(name)}, word
    assert fold("Lebœuf ÆLIS") == "leboeuf aelis"


# --- 3. the family's pages while online booking or cancelling is suspended ------------------------


@pytest.fixture
def gated(world):
    world.procedures = catalogue(world)
    configure_gates(world, world.procedures)
    return world


def test_suspended_booking_shows_what_to_do_and_no_booking_menu(gated, client):
    world = gated
    session = world.session()
    hh, (child,) = world.household()
    parent = parent_of(world, client, hh)
    field = f'name="item-{child.pk}-{session.pk}"'
    with time_machine.travel(BEFORE, tick=False):
        before = parent.get(family_url(world, "calendrier/?mois=2024-12")).content.decode()
        set_state(world, "inscriptions", "suspended")
        during = parent.get(family_url(world, "calendrier/?mois=2024-12"))
        grid = parent.get(family_url(world, "calendrier/mois/?mois=2024-12")).content.decode()
    assert field in before and "Envoyer ma demande" in before  # the control: open, a menu
    html = during.content.decode()
    assert field not in html and "<select" not in html and "Envoyer ma demande" not in html
    assert "fam-cell--suspended" in html and "Réservation en ligne suspendue" in text(during)
    cell = html[html.index("fam-cell--suspended") :]
    assert INSTEAD in cell[: cell.index("</li>")]  # said on the day itself, not only at the top
    assert "fam-month__day--suspended" in grid and "Réservation en ligne suspendue" in grid


def test_suspended_cancelling_removes_the_cancel_links_but_not_the_counters(gated, client, agent):
    world = gated
    session = world.session()
    hh, (child,) = world.household()
    booking = services.booking_create_by_agent(
        household=hh,
        child=child,
        session=session,
        unit=world.units["journee"],
        actor=AGENT,
        now=BEFORE,
        reason="",
    )
    cancel = family_url(world, f"reservations/{booking.pk}/annuler/")
    set_state(world, "annulations", "suspended")
    with time_machine.travel(BEFORE, tick=False):
        counter = agent.get(agent_url(world, f"households/{hh.reference}/")).content.decode()
        parent = parent_of(world, client, hh)
        calendar = parent.get(family_url(world, "calendrier/?mois=2024-12")).content.decode()
        home = parent.get(family_url(world)).content.decode()
        page = parent.get(cancel).content.decode()
    for html in (calendar, home):
        assert f'href="{cancel}"' not in html and INSTEAD in html
    assert (
        '<form method="post">' not in page
        and "Confirmer l’annulation" not in page
        and INSTEAD in page
    )
    assert f"/bookings/{booking.pk}/cancel/" in counter  # the counter still cancels
    assert Booking.objects.get().status == "booked"


def test_suspended_booking_leaves_declining_an_offered_place_but_not_accepting_it(gated, client):
    world = gated
    session = world.session()
    first, (a,) = world.household()
    second, (b,) = world.household()
    world.submit(first, [item(a, session)])
    world.submit(second, [item(b, session)])  # full (capacity 1): waiting
    services.booking_cancel(booking=Booking.objects.get(household=first), actor=AGENT, now=BEFORE)
    entry = WaitlistEntry.objects.get(household=second, status="offered")  # offered at once
    accept = family_url(world, f"liste-attente/{entry.pk}/accepter/")
    decline = family_url(world, f"liste-attente/{entry.pk}/refuser/")
    parent = parent_of(world, client, second)
    with time_machine.travel(BEFORE, tick=False):
        pages = [
            parent.get(family_url(world)),
            parent.get(family_url(world, "calendrier/?mois=2024-12")),
        ]
        assert all(accept in p.content.decode() for p in pages)  # the control: open
        set_state(world, "inscriptions", "suspended")
        pages = [
            parent.get(family_url(world)),
            parent.get(family_url(world, "calendrier/?mois=2024-12")),
        ]
    for page in pages:
        html = page.content.decode()
        assert accept not in html and decline in html and INSTEAD in html
