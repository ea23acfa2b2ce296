"""E-mail subscriptions: double opt-in end to end, per-service scope, stop links, privacy."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse
from django.utils import translation

from guichet.common.actor import Actor
from guichet.journal.models import Entry
from guichet.status import services, subscriptions
from guichet.status.models import Subscription

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
ADDRESS = "Camille.Martin@example.org"


def _base_ops():
    return [
        {"op": "portal.set", "name": "Saint-Nazaire"},
        {"op": "organisation.set", "slug": "ville", "name": "Ville de Saint-Nazaire"},
        {"op": "organisation.set", "slug": "agglo", "name": "Saint-Nazaire agglomération", "kind": "agglomeration"},
        {"op": "service.set", "organisation": "agglo", "slug": "eau", "name": "Service de l'eau", "name_en": "Water service"},
        {"op": "procedure.set", "service": "eau", "slug": "facturation", "name": "Facturation"},
        {"op": "service.set", "organisation": "ville", "slug": "etat-civil", "name": "État civil"},
        {"op": "procedure.set", "service": "etat-civil", "slug": "teleservices", "name": "Demandes en ligne"},
        {"op": "incident.set", "organisation": "ville", "slug": "cyberattaque", "title": "Cyberattaque",
         "started_at": "2024-04-03T08:00:00+02:00"},
    ]


def _water(state: str) -> list[dict]:
    return [{
        "op": "availability.set", "incident": "cyberattaque", "service": "eau", "procedure": "facturation",
        "state": state, "explanation": "Aucune facture ne peut être éditée.",
    }]


def _civil(state: str) -> list[dict]:
    return [{
        "op": "availability.set", "incident": "cyberattaque", "service": "etat-civil", "procedure": "teleservices",
        "channel": "online", "state": state,
    }]


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.TASKS = IMMEDIATE
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.GUICHET_PUBLIC_URL = "https://guichet.example.fr"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def portal(db):
    services.publish_now(portal_slug="saint-nazaire", operations=_base_ops(), actor=Actor.cli(), title="Catalogue")
    from guichet.catalog.models import Portal

    mail.outbox.clear()
    return Portal.objects.get(slug="saint-nazaire")


def _publish(title: str, ops: list[dict], capture) -> None:
    with capture(execute=True):
        services.publish_now(portal_slug="saint-nazaire", operations=ops, actor=Actor.cli(), title=title)


def _subscribe(client, capture, email=ADDRESS, service="", prefix=""):
    with capture(execute=True):
        return client.post(f"{prefix}/saint-nazaire/status/subscribe/", {"email": email, "service": service})


def _link(message, name: str) -> str:
    pattern = {"confirm": r"https://guichet\.example\.fr(/\S*/subscriptions/confirm/\S+/)",
               "stop": r"https://guichet\.example\.fr(/\S*/subscriptions/stop/\S+/)"}[name]
    found = re.search(pattern, message.body)
    assert found, message.body
    return found.group(1)


def _confirm(client, capture, **kw):
    _subscribe(client, capture, **kw)
    path = _link(mail.outbox[-1], "confirm")
    mail.outbox.clear()
    assert client.post(path).status_code == 200
    return path


def test_double_opt_in_end_to_end(client, portal, django_capture_on_commit_callbacks):
    response = client.get(reverse("status:subscribe", kwargs={"portal": "saint-nazaire"}))
    assert response.status_code == 200
    assert 'name="email"' in response.text

    response = _subscribe(client, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    with translation.override("fr"):
        assert translation.gettext("Check your inbox") in response.text
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [ADDRESS.lower()]
    path = _link(message, "confirm")

    # Nothing is sent before the address is confirmed.
    _publish("L'eau ne facture plus", _water("suspended"), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1

    page = client.get(path)
    assert page.status_code == 200 and "<form" in page.text
    assert client.post(path).status_code == 200
    assert Subscription.objects.get().confirmed_at is not None
    mail.outbox.clear()

    _publish("Facturation de l'eau perturbée", _water("degraded"), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    update = mail.outbox[0]
    assert update.to == [ADDRESS.lower()]
    assert "Facturation de l'eau perturbée" in update.subject
    assert "Service de l'eau" in update.body
    assert "Perturbé" in update.body or "Disrupted" in update.body
    assert "https://guichet.example.fr/saint-nazaire/status/" in update.body
    assert "/subscriptions/stop/" in update.body


def test_get_on_confirm_link_changes_nothing(client, portal, django_capture_on_commit_callbacks):
    _subscribe(client, django_capture_on_commit_callbacks)
    path = _link(mail.outbox[0], "confirm")
    for _ in range(3):  # a mail scanner following the link
        assert client.get(path).status_code == 200
    assert Subscription.objects.get().confirmed_at is None
    mail.outbox.clear()
    _publish("Changement", _water("suspended"), django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_confirming_twice_acts_once(client, portal, django_capture_on_commit_callbacks):
    path = _confirm(client, django_capture_on_commit_callbacks)
    first = Subscription.objects.get().confirmed_at
    assert client.post(path).status_code == 200
    assert Subscription.objects.get().confirmed_at == first
    assert Entry.objects.filter(operation="status.subscription.confirm").count() == 1


def test_per_service_subscriber_only_hears_about_its_service(client, portal, django_capture_on_commit_callbacks):
    _confirm(client, django_capture_on_commit_callbacks, email="eau@example.org", service="eau")
    _confirm(client, django_capture_on_commit_callbacks, email="tout@example.org")

    _publish("État civil : téléservices suspendus", _civil("suspended"), django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [["tout@example.org"]]
    assert "État civil" in mail.outbox[0].body
    mail.outbox.clear()

    _publish("Eau : facturation suspendue", _water("suspended"), django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == ["eau@example.org", "tout@example.org"]
    water = next(m for m in mail.outbox if m.to == ["eau@example.org"])
    assert "Service de l'eau" in water.body and "État civil" not in water.body


def test_one_mail_per_address_with_several_subscriptions(client, portal, django_capture_on_commit_callbacks):
    _confirm(client, django_capture_on_commit_callbacks, service="eau")
    _confirm(client, django_capture_on_commit_callbacks, service="etat-civil")
    _publish("Tout change", _water("degraded") + _civil("suspended"), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "Service de l'eau" in body and "État civil" in body
    assert body.count("/subscriptions/stop/") == 2


def test_unconfirmed_and_unsubscribed_get_nothing(client, portal, django_capture_on_commit_callbacks):
    _subscribe(client, django_capture_on_commit_callbacks, email="pending@example.org")
    _confirm(client, django_capture_on_commit_callbacks, email="leaver@example.org")
    _publish("Premier", _water("degraded"), django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [["leaver@example.org"]]
    stop = _link(mail.outbox[0], "stop")
    mail.outbox.clear()

    page = client.get(stop)
    assert page.status_code == 200 and "<form" in page.text
    assert Subscription.objects.get(email="leaver@example.org").unsubscribed_at is None
    assert client.post(stop).status_code == 200
    assert client.post(stop).status_code == 200  # twice: still fine, acts once
    assert Entry.objects.filter(operation="status.subscription.cancel").count() == 1

    _publish("Second", _water("suspended"), django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_mail_in_the_subscribers_language(client, portal, django_capture_on_commit_callbacks):
    _confirm(client, django_capture_on_commit_callbacks, prefix="/en")
    assert Subscription.objects.get().language == "en"
    _publish("Eau", _water("suspended"), django_capture_on_commit_callbacks)
    body = mail.outbox[0].body
    assert "Water service" in body and "Suspended" in body
    assert "https://guichet.example.fr/en/saint-nazaire/status/" in body


def test_bad_email_is_a_field_error_and_saves_nothing(client, portal, django_capture_on_commit_callbacks):
    for bad in ["not-an-address", "", "a@b", "x" * 300 + "@example.org"]:
        response = _subscribe(client, django_capture_on_commit_callbacks, email=bad)
        assert response.status_code == 400
        assert 'id="id_email-error"' in response.text
        assert 'aria-describedby="id_email-error"' in response.text
    response = _subscribe(client, django_capture_on_commit_callbacks, service="no-such-service")
    assert response.status_code == 400 and 'id="id_service-error"' in response.text
    assert Subscription.objects.count() == 0
    assert mail.outbox == []


def test_same_answer_whether_or_not_already_subscribed(client, portal, django_capture_on_commit_callbacks):
    first = _subscribe(client, django_capture_on_commit_callbacks)
    path = _link(mail.outbox[0], "confirm")
    client.post(path)
    mail.outbox.clear()
    again = _subscribe(client, django_capture_on_commit_callbacks)
    assert again.status_code == first.status_code
    def strip(text):
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", text)

    assert strip(again.text) == strip(first.text)
    # The owner is told, with a stop link, and the subscription stays confirmed.
    assert len(mail.outbox) == 1 and "/subscriptions/stop/" in mail.outbox[0].body
    assert Subscription.objects.get().confirmed_at is not None


def test_requesting_again_rearms_with_a_new_link(client, portal, django_capture_on_commit_callbacks):
    _subscribe(client, django_capture_on_commit_callbacks)
    old = _link(mail.outbox[0], "confirm")
    _subscribe(client, django_capture_on_commit_callbacks)
    new = _link(mail.outbox[1], "confirm")
    assert old != new
    assert client.post(old).status_code == 404
    assert client.post(new).status_code == 200
    assert Subscription.objects.count() == 1


def test_unknown_or_expired_links(client, portal, django_capture_on_commit_callbacks, time_machine):
    assert client.get("/status/subscriptions/confirm/nope/").status_code == 404
    assert client.post("/status/subscriptions/stop/nope/").status_code == 404
    _subscribe(client, django_capture_on_commit_callbacks)
    path = _link(mail.outbox[0], "confirm")
    time_machine.move_to(Subscription.objects.get().created_at + subscriptions.confirm_window() * 2)
    assert client.post(path).status_code == 404
    assert Subscription.objects.get().confirmed_at is None


def test_rate_limit_per_address_sends_nothing_more(client, portal, django_capture_on_commit_callbacks, settings):
    settings.GUICHET_SUBSCRIBE_LIMIT_EMAIL = (2, 3600)
    for _ in range(5):
        response = _subscribe(client, django_capture_on_commit_callbacks, email="victim@example.org")
        assert response.status_code == 200  # same answer: no hint for an attacker
    assert len(mail.outbox) == 2


def test_rate_limit_per_connection(client, portal, django_capture_on_commit_callbacks, settings):
    settings.GUICHET_SUBSCRIBE_LIMIT_IP = (3, 3600)
    codes = [
        _subscribe(client, django_capture_on_commit_callbacks, email=f"p{i}@example.org").status_code
        for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    assert len(mail.outbox) == 3


def test_journal_never_holds_the_address(client, portal, django_capture_on_commit_callbacks):
    _confirm(client, django_capture_on_commit_callbacks, service="eau")
    _publish("Eau", _water("suspended"), django_capture_on_commit_callbacks)
    stop = _link(mail.outbox[0], "stop")
    client.post(stop)
    ops = set(Entry.objects.values_list("operation", flat=True))
    assert {"status.subscription.request", "status.subscription.confirm", "status.subscription.cancel"} <= ops
    for entry in Entry.objects.all():
        text = repr((entry.refs, entry.details, entry.actor, entry.operation, entry.payload_digest))
        assert "example.org" not in text.lower()
        assert "camille" not in text.lower()


def test_service_function_rejects_bad_input(portal):
    with pytest.raises(subscriptions.SubscriptionInvalid) as e:
        subscriptions.subscription_request(
            portal=portal, email="nope", service=None, language="fr", actor=Actor.anonymous(),
            now=portal.last_checked_at,
        )
    assert e.value.field == "email"
    assert Subscription.objects.count() == 0


def test_notifications_are_sent_in_bounded_batches(client, portal, django_capture_on_commit_callbacks, settings):
    settings.GUICHET_SUBSCRIBE_LIMIT_IP = (100, 3600)
    for i in range(5):
        _confirm(client, django_capture_on_commit_callbacks, email=f"p{i}@example.org")
    _confirm(client, django_capture_on_commit_callbacks, email="p0@example.org", service="eau")
    settings.GUICHET_NOTIFY_BATCH_SIZE = 2
    _publish("Eau", _water("suspended"), django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == [f"p{i}@example.org" for i in range(5)]


def test_closing_the_incident_tells_per_service_subscribers(client, portal, django_capture_on_commit_callbacks):
    _publish("Eau suspendue", _water("suspended"), django_capture_on_commit_callbacks)
    _confirm(client, django_capture_on_commit_callbacks, service="eau")
    _publish("Fin de l'incident", [{"op": "incident.close", "incident": "cyberattaque",
                                    "ended_at": "2024-06-30T18:00:00+02:00"}], django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    assert "Fin de l'incident" in mail.outbox[0].subject
    assert "Service de l'eau: [OK]" in mail.outbox[0].body
