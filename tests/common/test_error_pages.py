"""Error pages speak French in the site's frame: a refused page says why and where to go."""

import pytest
from django.contrib.auth import get_user_model

from guichet.catalog.models import Portal

pytestmark = pytest.mark.django_db


def test_a_staff_page_without_the_role_is_a_french_403_in_the_site_frame(client):
    Portal.objects.create(slug="ville-test", name="Ville test")
    user = get_user_model().objects.create_user("parent@example.org", "parent@example.org", "x" * 12)
    client.force_login(user)
    r = client.get("/manage/billing/ville-test/")
    assert r.status_code == 403
    page = r.content.decode()
    assert '<html lang="fr"' in page
    assert "Accès refusé" in page and "Retour à la page d’accueil" in page
    assert "403 Forbidden" not in page
