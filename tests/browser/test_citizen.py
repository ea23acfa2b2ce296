"""A citizen on a phone: reads the status page, switches language, opens a service, subscribes."""

import re

import pytest
from django.core import mail

from guichet.status.models import Subscription

pytestmark = pytest.mark.django_db(transaction=True)


def test_citizen_on_a_phone_reads_switches_language_opens_a_service_and_subscribes(
    live_server, phone, axe, seeds, immediate_tasks
):
    page = phone
    page.goto(f"{live_server.url}/saint-nazaire/status/")
    assert page.locator("html").get_attribute("lang") == "fr"
    # The incident and an affected service with its state in words, not colour only.
    assert page.get_by_role("heading", name=re.compile("Cyberattaque")).first.is_visible()
    water = page.locator("article", has=page.get_by_role("heading", name=re.compile("eau", re.I))).first
    assert water.is_visible()
    assert "02 51 16 48 48" in page.content()
    # Nothing overflows a phone screen horizontally.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    axe(page)

    # Switch to English: same page, English texts where the notice has them.
    page.locator("nav.lang").get_by_role("button").first.click()
    page.wait_for_url(re.compile(r"/en/saint-nazaire/status/"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Water and sanitation invoices" in page.content()
    axe(page)

    # Open one service's own page.
    page.get_by_role("link", name=re.compile(r"^Water", re.I)).first.click()
    page.wait_for_url(re.compile(r"/en/saint-nazaire/status/services/"))
    assert "Water and sanitation invoices" in page.content()
    axe(page)

    # Back in French, subscribe to every update.
    page.goto(f"{live_server.url}/saint-nazaire/status/")
    page.locator("#subscribe-email").fill("parent.canari@example.org")
    page.locator("form.subscribe").get_by_role("button").click()
    page.wait_for_load_state()
    assert page.locator("[role=status]").is_visible()
    axe(page)
    sub = Subscription.objects.get()
    assert sub.confirmed_at is None  # double opt-in: nothing confirmed until the link is used
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/confirm/\S+/", mail.outbox[0].body).group(0)
    path = link.split("/", 3)[3]
    page.goto(f"{live_server.url}/{path}")
    page.get_by_role("button").last.click()
    page.wait_for_load_state()
    sub.refresh_from_db()
    assert sub.confirmed_at is not None


@pytest.mark.parametrize("path", ["/", "/saint-nazaire/", "/maisons-alfort/status/", "/en/maisons-alfort/status/",
                                  "/saint-nazaire/status/services/eau/", "/saint-nazaire/status/subscribe/"])
def test_public_pages_have_no_accessibility_violations(live_server, desktop, axe, seeds, path):
    response = desktop.goto(live_server.url + path)
    assert response.status == 200
    axe(desktop)
