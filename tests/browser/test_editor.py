"""An editor publishes an update; the public page and the Atom feed show it."""

import re

import pytest
from django.contrib.auth import get_user_model

from guichet.accounts.models import EditorRole
from guichet.catalog.models import Portal
from tests.accounts.helpers import current_code, enrolled_device

pytestmark = pytest.mark.django_db(transaction=True)
TEXT = "Les factures d'eau reprennent : premier envoi le 1er juillet."


def test_editor_publishes_an_update_seen_on_the_public_page_and_feed(live_server, desktop, axe, seeds):
    user = get_user_model().objects.create_user("com", "com@example.org", "un mot de passe solide 42")
    EditorRole.objects.create(user=user, portal=Portal.objects.get(slug="saint-nazaire"))
    device = enrolled_device(user)
    page = desktop

    page.goto(f"{live_server.url}/manage/status/saint-nazaire/")
    page.wait_for_url(re.compile(r"/accounts/login/"))  # not signed in: asked to sign in first
    page.fill("input[name=username]", "com")
    page.fill("input[name=password]", "un mot de passe solide 42")
    page.locator("main form button[type=submit]").click()
    # Staff: the second step, a code from the authenticator app (tests/accounts/helpers.py).
    page.wait_for_url(re.compile(r"/accounts/two-factor/"))
    page.fill("input[name=code]", current_code(device))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/manage/status/saint-nazaire/$"))
    axe(page)

    page.locator("a[href*='/edit/update/']").first.click()
    page.fill("textarea[name=body]", TEXT)
    page.locator("form:has(textarea[name=body]) button[type=submit]").click()
    page.wait_for_load_state()
    page.wait_for_url(re.compile(r"/changes/\d+/$"))
    assert TEXT in page.inner_text("main")  # the review shows what will change
    axe(page)

    # Not public before it is published.
    public = page.context.new_page()
    public.goto(f"{live_server.url}/saint-nazaire/status/")
    assert TEXT not in public.content()

    page.locator("button[name=action][value=publish]").click()
    page.wait_for_load_state()

    public.goto(f"{live_server.url}/saint-nazaire/status/")
    assert TEXT in public.inner_text("main")
    feed = public.request.get(f"{live_server.url}/saint-nazaire/status/feed.atom")
    assert feed.ok
    assert "Les factures d" in feed.text() and "premier envoi le 1er juillet" in feed.text()
