"""A parent on a phone books, is refused after the deadline, cancels late, justifies; an agent
books on behalf after the deadline. axe checks the parent pages."""

from __future__ import annotations

import os
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model

from guichet.bookings.models import AgentRole, Booking, Guardian, Justification
from tests.accounts.helpers import current_code, enrolled_device
from tests.bookings.test_services import BEFORE, World, paris

pytestmark = pytest.mark.django_db(transaction=True)

LATE = paris(2024, 12, 2, 9, 0)  # after the Sunday deadline of Wednesday 4 December
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SHOTS = os.environ.get("GUICHET_SCREENSHOTS")


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def login(page, base, username, next_url):
    page.goto(f"{base}/accounts/login/?next={next_url}")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill("correct horse battery")
    page.locator("form").get_by_role("button").last.click()
    page.wait_for_load_state()
    if "/accounts/two-factor/" in page.url:  # staff: the code from the authenticator app
        user = get_user_model().objects.get(username=username)
        page.locator("input[name=code]").fill(current_code(enrolled_device(user)))
        page.locator("main form button[type=submit]").first.click()
        page.wait_for_load_state()


@pytest.fixture
def town(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    world = World(capacity=5)
    world.session()
    hh, (child,) = world.household()
    User = get_user_model()
    parent = User.objects.create_user("parent", password="correct horse battery")
    Guardian.objects.create(organisation=world.org, household=hh, user=parent)
    agent = User.objects.create_user("agent", password="correct horse battery")
    AgentRole.objects.create(organisation=world.org, user=agent)
    enrolled_device(agent)
    return world, hh, child


def test_parent_books_is_refused_late_cancels_late_and_justifies(live_server, phone, axe, town, tmp_path):
    world, hh, child = town
    page = phone
    base = live_server.url
    fam = f"/{world.portal.slug}/famille/"
    with time_machine.travel(BEFORE, tick=True):
        login(page, base, "parent", fam)
        assert page.get_by_role("heading", level=1).is_visible()
        axe(page)
        shot(page, "family-home-390")
        page.goto(f"{base}{fam}calendrier/?mois=2024-12")
        assert re.search(r"dimanche 1(er)? décembre", page.content())
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
        axe(page)
        shot(page, "family-calendar-390")
        page.locator("select.fam-select").first.select_option("matin-repas")
        page.locator(".fam-mode input[type=radio]").first.check()
        page.locator("button.fam-button--primary").click()
        page.wait_for_url(re.compile(r"/famille/panier/\d+/"))
        assert page.locator(".fam-state--booked").count() == 1
        axe(page)
        shot(page, "family-basket-390")
    booking = Booking.objects.get()
    assert booking.unit.code == "matin-repas" and booking.status == "booked"

    # After the deadline: nothing left to select.
    with time_machine.travel(LATE, tick=True):
        page.goto(f"{base}{fam}calendrier/?mois=2024-12")
        assert page.locator("select.fam-select").count() == 0
        assert page.locator(".fam-state--booked").count() == 1
        axe(page)

        # Cancel late: the page says it will be billed, before and after confirming.
        page.goto(f"{base}{fam}")
        page.get_by_role("link", name=re.compile("Annuler|Cancel")).first.click()
        page.wait_for_load_state()
        assert page.locator(".fam-warning").is_visible()
        axe(page)
        shot(page, "family-cancel-390")
        page.locator("button.fam-button--danger").click()
        page.wait_for_load_state()
        assert page.locator(".fam-warning").is_visible()
        axe(page)
        booking.refresh_from_db()
        assert booking.status == "cancelled" and booking.late

        # Upload a medical certificate.
        page.locator(".fam-warning a.fam-button").click()
        page.wait_for_load_state()
        cert = tmp_path / "certificat.pdf"
        cert.write_bytes(PDF)
        page.locator("input[name=kind]").first.check()
        page.locator("input[type=file]").set_input_files(str(cert))
        axe(page)
        shot(page, "family-justify-390")
        page.locator("button.fam-button--primary").click()
        page.wait_for_load_state()
        assert page.locator("[role=status]").is_visible()
        axe(page)
    assert Justification.objects.get(booking=booking).document


def test_parent_is_refused_after_the_deadline_with_the_reason(live_server, phone, town):
    world, hh, child = town
    page = phone
    base = live_server.url
    fam = f"/{world.portal.slug}/famille/"
    with time_machine.travel(BEFORE, tick=True):
        login(page, base, "parent", fam)
        page.goto(f"{base}{fam}calendrier/?mois=2024-12")
        page.locator("select.fam-select").first.select_option("matin-repas")
        page.locator(".fam-mode input[type=radio]").first.check()  # the family chooses the mode
    # The parent waited too long before sending the page.
    with time_machine.travel(LATE, tick=True):
        page.locator("button.fam-button--primary").click()
        page.wait_for_url(re.compile(r"/famille/panier/\d+/"))
        assert page.locator(".fam-state--refused").is_visible()
        assert page.locator(".fam-reason").inner_text().strip()
        shot(page, "family-refused-390")
    assert not Booking.objects.exists()


def test_agent_books_on_behalf_after_the_deadline(live_server, desktop, town):
    world, hh, child = town
    page = desktop
    base = live_server.url
    with time_machine.travel(LATE, tick=True):
        url = f"/manage/bookings/{world.portal.slug}/"
        login(page, base, "agent", url)
        page.locator("#q").fill(hh.reference)
        page.locator("form[role=search] button").click()
        page.wait_for_url(re.compile(r"/households/"))
        page.locator("#day").fill("2024-12-04")
        page.locator("form.ag-inline button").first.click()
        page.wait_for_load_state()
        form = page.locator("form.ag-book").first
        form.locator("select[name=unit]").select_option("matin-repas")
        form.locator("input[name=reason]").fill("Reprise du travail imprévue")
        form.locator("button[type=submit]").click()
        page.wait_for_load_state()
        assert page.locator(".m-message--success").is_visible()
        shot(page, "agent-household-1280")
    b = Booking.objects.get()
    assert b.after_deadline and b.reason == "Reprise du travail imprévue"
