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


@pytest.mark.parametrize(("path", "json"), [("/api/v1/bookings/households/me", True), ("/", False)])
def test_a_database_that_gives_no_connection_in_time_is_busy_not_an_error(client, monkeypatch, path, json):
    """A full connection pool (or a database restarting) met before any view runs — reading the
    session — answers 503 "busy, try again" with Retry-After, in the API's shape on the API."""
    from django.db import OperationalError

    from guichet.accounts.sessions import SessionStore

    user = get_user_model().objects.create_user("parent@example.org", "parent@example.org", "x" * 12)
    client.force_login(user)

    def pool_timeout(self):
        raise OperationalError("couldn't get a connection after 10.00 sec")

    monkeypatch.setattr(SessionStore, "_get_session_from_db", pool_timeout)
    client.raise_request_exception = False
    r = client.get(path)
    assert r.status_code == 503 and r["Retry-After"] == "5"
    if json:
        assert r.json()["errors"][0]["code"] == "busy"
    else:
        assert "Réessayez dans quelques secondes" in r.content.decode()


def test_other_errors_stay_a_500(client, monkeypatch):
    from guichet.accounts.sessions import SessionStore

    user = get_user_model().objects.create_user("parent@example.org", "parent@example.org", "x" * 12)
    client.force_login(user)
    monkeypatch.setattr(SessionStore, "_get_session_from_db", lambda self: 1 / 0)
    client.raise_request_exception = False
    assert client.get("/").status_code == 500
