"""The static export opens from disk, with no server, and shows what the live page shows."""

import pytest
from django.utils import timezone

from guichet.catalog.models import Portal
from guichet.status.export import export_all
from guichet.status.selectors import page_state

pytestmark = pytest.mark.django_db(transaction=True)


def test_static_export_opens_from_disk_with_the_same_content(tmp_path, desktop, axe, seeds):
    now = timezone.now()
    export_all(directory=tmp_path, now=now)
    portal = Portal.objects.get(slug="maisons-alfort")
    state = page_state(portal, now)

    page = desktop
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((tmp_path / "maisons-alfort" / "index.html").as_uri())
    text = page.inner_text("main")
    for s in state.listed:
        assert s.service.name in text
        for pv in s.procedures:
            assert pv.procedure.name in text
    for phone in ("01 43 96 77 01", "01 43 96 77 02", "01 43 96 77 03"):
        assert phone in text
    # Styled from its own copy of the stylesheet, with nothing fetched from a server.
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != ""
    assert all(u.startswith("file://") for u in requests), requests
    assert page.evaluate("document.scripts.length") == 0
    axe(page)

    # The language link and a service page work from disk too.
    page.get_by_role("link", name="English").first.click()
    assert page.locator("html").get_attribute("lang") == "en"
    first_service = sorted((tmp_path / "maisons-alfort" / "services").glob("*.html"))[0]
    page.goto(first_service.as_uri())
    assert page.locator("h1").count() == 1
