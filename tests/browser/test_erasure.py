"""An agent executes a family's erasure request in a browser: the table of what can and cannot
be erased, the confirmation box, the page saying it is done. axe checks both pages."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from guichet.accounts import personal_data
from guichet.accounts.models import ErasureRequest
from guichet.bookings.models import AgentRole, Guardian, Household
from tests.accounts.helpers import enrolled_device
from tests.billing.outputs_data import billed_town
from tests.browser.test_family import login

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_agent_erases_a_family_file(live_server, desktop, axe, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    b = billed_town()
    User = get_user_model()
    parent = User.objects.create_user("parent", "parent@example.org", "correct horse battery")
    Guardian.objects.create(organisation=b.org, household=b.household, user=parent)
    req, _created = personal_data.erasure_request(household=b.household, user=parent)
    agent = User.objects.create_user("agent", "agent@example.org", "correct horse battery")
    AgentRole.objects.create(organisation=b.org, user=agent)
    enrolled_device(agent)
    page, base = desktop, live_server.url
    login(page, base, "agent", f"/accounts/staff/personal-data/{b.org.portal.slug}/{req.pk}/")
    assert "Code de commerce" in page.content()
    axe(page)
    shots = os.environ.get("GUICHET_SCREENSHOTS")
    if shots:
        page.screenshot(path=f"{shots}/erasure-review.png", full_page=True)
    # Without the box: the browser refuses the form (required); ticked, the erasure runs.
    page.locator("input[name=confirm]").check()
    page.get_by_role("button", name="Effacer maintenant").click()
    page.wait_for_load_state()
    assert "Effacé le" in page.content()
    axe(page)
    if shots:
        page.screenshot(path=f"{shots}/erasure-done.png", full_page=True)
    assert ErasureRequest.objects.get(pk=req.pk).erased_by == agent
    assert Household.objects.get(pk=b.household.pk).email == ""
    assert not User.objects.get(pk=parent.pk).is_active
