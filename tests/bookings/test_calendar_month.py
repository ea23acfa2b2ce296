"""A child's calendar as a month grid: a table with its headers, each day's state in words, each
day leading to its week (where it is booked); the month changes in place with HTMX and with a
plain link without JavaScript."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import time_machine
from django.conf import settings

from guichet.bookings.models import Booking
from tests.bookings.test_services import BEFORE, WEDNESDAY, World

from .test_views_family import Family, book

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    return World(capacity=2)


@pytest.fixture
def family(world, client):
    return Family(world, client, children=2)


def cell(html: str, day: dt.date, child) -> str:
    """The <td> of ``day`` in ``child``'s table."""
    table = html[html.index(f"<caption>{child.first_name},"):]
    table = table[:table.index("</table>")]
    link = f"#jour-{child.pk}-{day:%Y-%m-%d}"
    start = table.rindex("<td", 0, table.index(link))
    return table[start:table.index("</td>", start)]


def test_the_month_grid_states_each_day_in_words_and_links_to_its_week(world, family):
    wednesday = world.session()  # WEDNESDAY, 4 December 2024
    later = world.session(day=WEDNESDAY + dt.timedelta(days=7), capacity=0)  # full: 0 places
    with time_machine.travel(BEFORE, tick=False):
        assert book(family, wednesday).status_code == 302
        html = family.client.get(family.url("calendrier/mois/?mois=2024-12")).content.decode()
    anna, ben = family.children
    # A table per child, with a caption and a header per weekday (the full name for screen readers).
    assert html.count('<table class="fam-month">') == 2
    assert f"<caption>{anna.first_name}, décembre 2024</caption>" in html
    headers = re.findall(r'<th scope="col"><abbr title="([^"]+)">', html)
    assert headers[:7] == ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
    # The booked day says so in words (visible word, and the full sentence read out), not only by colour.
    booked = cell(html, WEDNESDAY, anna)
    assert "fam-month__day--booked" in booked and ">Réservé<" in booked  # the short word
    assert "mercredi 4 décembre — Réservé" in booked
    # The other child is not booked that day: places are left.
    assert "mercredi 4 décembre — Places disponibles" in cell(html, WEDNESDAY, ben)
    assert "mercredi 11 décembre — Complet" in cell(html, later.date, anna)
    # Each day leads to its week's page, at that day, where the booking form is.
    week = f"/{world.portal.slug}/famille/calendrier/?semaine=2024-12-02&amp;enfant={anna.pk}#jour-{anna.pk}-2024-12-04"
    assert f'href="{week}"' in booked
    with time_machine.travel(BEFORE, tick=False):
        week_page = family.client.get(week.replace("&amp;", "&").split("#")[0]).content.decode()
    assert f'id="jour-{anna.pk}-2024-12-04"' in week_page and f'name="item-{anna.pk}-{wednesday.pk}"' not in week_page
    assert Booking.objects.filter(child=anna, session=wednesday, status="booked").exists()


def test_changing_month_works_with_and_without_htmx(world, family):
    world.session()
    url = family.url("calendrier/mois/?mois=2024-12")
    with time_machine.travel(BEFORE, tick=False):
        page = family.client.get(url)
        partial = family.client.get(url, HTTP_HX_REQUEST="true")
        restore = family.client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    html = page.content.decode()
    # Without JavaScript: plain links to the previous and next months (htmx only adds hx-get).
    nxt = f"/{family.world.portal.slug}/famille/calendrier/mois/?mois=2025-01"
    assert f'<a href="{nxt}" rel="next" hx-get="{nxt}" hx-target="#fam-grid"' in html
    assert f'href="/{family.world.portal.slug}/famille/calendrier/mois/?mois=2024-11" rel="prev"' in html
    assert '<script src="/static/guichet/vendor/htmx.min.js" defer></script>' in html
    # With HTMX: only the grid (its navigation included), to swap in place; the month is announced.
    fragment = partial.content.decode()
    assert fragment.lstrip().startswith('<div id="fam-grid"') and "<html" not in fragment
    assert 'aria-live="polite"' in fragment and "Décembre 2024" in fragment
    assert "HX-Request" in partial["Vary"]
    # A history restore (back button with an empty htmx cache) gets the whole page.
    assert "<html" in restore.content.decode()


@pytest.mark.parametrize("query", ["?mois=2024-13", "?mois=demain", "?mois=2024-12&enfant=999999"])
def test_a_bad_month_or_someone_elses_child_is_not_found(family, query):
    assert family.client.get(family.url(f"calendrier/mois/{query}")).status_code == 404


def test_another_familys_child_is_not_shown(world, family, client):
    other = Family(world, client.__class__(), children=1)
    r = family.client.get(family.url(f"calendrier/mois/?mois=2024-12&enfant={other.children[0].pk}"))
    assert r.status_code == 404


def test_htmx_is_vendored_with_its_version_and_licence():
    vendor = Path(settings.BASE_DIR) / "static" / "guichet" / "vendor"
    if not vendor.exists():
        vendor = Path(__file__).resolve().parents[2] / "src" / "guichet" / "static" / "guichet" / "vendor"
    script = (vendor / "htmx.min.js").read_text(encoding="utf-8")
    assert script.startswith("var htmx=function()")
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    assert "htmx.org 2.0.11" in readme and "0BSD" in readme
    assert "Zero-Clause BSD" in (vendor / "htmx.LICENSE.txt").read_text(encoding="utf-8")
