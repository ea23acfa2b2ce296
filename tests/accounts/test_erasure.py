"""An agent executes a family's erasure request: what can be erased is erased, what the law keeps
(invoices, payments, past bookings) stays, the journal says what was done with ids and counts only;
a blocked or unconfirmed erasure changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from guichet.accounts import personal_data
from guichet.accounts.models import ErasureRequest, RecordAccess, StaffRole
from guichet.billing.models import Invoice, Payment
from guichet.bookings.models import AgentRole, Booking, Child, Guardian, Household, Justification
from guichet.journal.models import Entry
from tests.billing import factories as F
from tests.billing.outputs_data import billed_town

pytestmark = pytest.mark.django_db

NAME = "Zorglub-Erasable"


@pytest.fixture
def family(settings, tmp_path):
    """A family billed for September-October 2024 (an invoice, a deposit), two guardians (one
    also a guardian of another family file), a justification with its file, and an open
    erasure request; an agent of the organisation."""
    settings.MEDIA_ROOT = tmp_path / "media"
    b = billed_town(ref="F001")
    h = b.household
    h.display_name, h.email = f"Famille {NAME}", f"{NAME.lower()}@example.org"
    h.postal_address = f"3 rue {NAME}\n44600 Saint-Nazaire"
    h.save()
    b.child.first_name, b.child.school = f"Léa {NAME}", "École Jules Verne"
    b.child.save()
    User = get_user_model()
    b.parent = User.objects.create_user(
        f"{NAME}@example.org", f"{NAME}@example.org", "x" * 12, first_name=NAME
    )
    b.other_parent = User.objects.create_user("deux@example.org", "deux@example.org", "x" * 12)
    for user in (b.parent, b.other_parent):
        Guardian.objects.create(organisation=b.org, household=h, user=user)
    b.elsewhere = F.household(b.org, ref="F002")
    Guardian.objects.create(organisation=b.org, household=b.elsewhere, user=b.other_parent)
    booking = Booking.objects.filter(household=h).order_by("pk").first()
    booking.reason = f"Hospitalisation de {NAME}"
    booking.save(update_fields=["reason"])
    b.justification = Justification.objects.create(
        organisation=b.org,
        booking=booking,
        kind="medical",
        received_at=F.NOW,
        actor_ref="t",
        document=SimpleUploadedFile("certificat.pdf", b"%PDF-1.4 certificat " + NAME.encode()),
    )
    b.file_path = b.justification.document.path
    b.request, _created = personal_data.erasure_request(household=h, user=b.parent)
    b.agent = User.objects.create_user("agent@example.org", "agent@example.org", "x" * 12)
    AgentRole.objects.create(organisation=b.org, user=b.agent)
    b.url = reverse("accounts:staff-erasure", args=[b.org.portal.slug, b.request.pk])
    return b


def _kept(b):
    return (
        sorted(Invoice.objects.values_list("pk", "number", "total_cents")),
        sorted(Payment.objects.values_list("pk", "amount_cents")),
        sorted(Booking.objects.values_list("pk", "status", "child_id")),
    )


def _personal(b):
    h = Household.objects.get(pk=b.household.pk)
    return (
        h.display_name,
        h.email,
        list(Child.objects.filter(household=h).values_list("first_name", "school", "birth_date")),
        Guardian.objects.filter(household=h).count(),
    )


def test_an_agent_erases_what_can_be_erased_and_the_law_keeps_the_rest(
    client, family, django_capture_on_commit_callbacks
):
    b = family
    kept = _kept(b)
    client.force_login(b.agent)
    page = client.get(b.url)
    assert page.status_code == 200 and 'name="confirm"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(b.url, {"action": "erase", "confirm": "yes"})
    assert r.status_code == 302
    # Erased: names, addresses, school, the day of birth, the file, the typed reason.
    h = Household.objects.get(pk=b.household.pk)
    assert NAME not in h.display_name and h.email == "" and h.postal_address == ""
    assert list(
        Child.objects.filter(household=h).values_list("first_name", "school", "birth_date")
    ) == [("1", "", dt.date(b.child.birth_date.year, 1, 1))]
    assert not Guardian.objects.filter(household=h).exists()
    j = Justification.objects.get(pk=b.justification.pk)
    assert not j.document and j.kind == "medical"  # the fact stays with the invoice
    import os

    assert not os.path.exists(b.file_path)
    assert not Booking.objects.filter(household=h).exclude(reason="").exists()
    # The first parent's account is closed: no address, no password, cannot sign in.
    parent = get_user_model().objects.get(pk=b.parent.pk)
    assert (
        not parent.is_active
        and NAME.lower() not in parent.email.lower()
        and not parent.has_usable_password()
    )
    assert parent.first_name == "" and NAME not in parent.username
    signin = client.post(
        reverse("accounts:login"), {"username": f"{NAME}@example.org", "password": "x" * 12}
    )
    assert signin.status_code != 302
    # The other parent is still a guardian of another file: their account stays, only the link goes.
    other = get_user_model().objects.get(pk=b.other_parent.pk)
    assert other.is_active and other.email == "deux@example.org"
    assert Guardian.objects.filter(user=other, household=b.elsewhere).exists()
    # Kept: invoices, payments, bookings (what invoices rest on), staff accesses.
    assert _kept(b) == kept
    assert RecordAccess.objects.filter(household_id=h.pk, user=b.agent).exists()
    req = ErasureRequest.objects.get(pk=b.request.pk)
    assert req.erased_by == b.agent and req.erased_at and req.status == "answered"
    (entry,) = Entry.objects.filter(operation="accounts.erasure.execute")
    assert (
        entry.details["erased"]["accounts_closed"] == 1
        and entry.details["erased"]["justification_files"] == 1
        and entry.details["erased"]["postal_address"] == 1
    )
    assert NAME.lower() not in str(Entry.objects.values_list("details", flat=True)).lower()
    # The page says it is done; a second click erases nothing more.
    assert "Effacé le" in client.get(b.url).content.decode()
    assert client.post(b.url, {"action": "erase", "confirm": "yes"}).status_code == 302
    assert Entry.objects.filter(operation="accounts.erasure.execute").count() == 1
    # The invoice page still shows the invoice, now without the family's name.
    finance = get_user_model().objects.create_user(
        "compta@example.org", "compta@example.org", "x" * 12
    )
    StaffRole.objects.create(user=finance, organisation=b.org, kind="finance", granted_at=F.NOW)
    client.force_login(finance)
    inv = client.get(
        reverse("billing:staff-invoice", args=[b.org.portal.slug, b.org.slug, b.invoice.pk])
    )
    assert (
        inv.status_code == 200
        and b.invoice.number in inv.content.decode()
        and NAME not in inv.content.decode()
    )


def test_an_erasure_blocked_by_a_future_booking_changes_nothing_and_says_why(client, family):
    b = family
    future = F.session(b.org, b.site, b.acts["mercredis"], timezone.localdate() + dt.timedelta(days=30))
    F.book(b.child, future, "journee")
    before, kept = _personal(b), _kept(b)
    client.force_login(b.agent)
    page = client.get(b.url).content.decode()
    assert 'value="erase"' not in page  # no erase button while blocked
    r = client.post(b.url, {"action": "erase", "confirm": "yes"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "Rien n’a été effacé" in html and "Réservations à venir" in html
    assert _personal(b) == before and _kept(b) == kept
    assert get_user_model().objects.get(pk=b.parent.pk).is_active
    assert not Entry.objects.filter(operation="accounts.erasure.execute").exists()
    assert ErasureRequest.objects.get(pk=b.request.pk).erased_at is None


def test_an_unconfirmed_erasure_changes_nothing(client, family):
    b = family
    before = _personal(b)
    client.force_login(b.agent)
    r = client.post(b.url, {"action": "erase"})
    assert r.status_code == 400 and "Cochez la case" in r.content.decode()
    assert _personal(b) == before
    assert Justification.objects.get(pk=b.justification.pk).document


def test_a_rolled_back_erasure_keeps_the_files_and_the_data(
    family, monkeypatch, django_capture_on_commit_callbacks
):
    b = family
    before = _personal(b)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(personal_data, "journal_append", broken)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        personal_data.erasure_execute(
            request_id=b.request.pk, organisation_ids=[b.org.pk], user=b.agent
        )
    assert _personal(b) == before
    import os

    assert os.path.exists(b.file_path)


@pytest.mark.parametrize("active", [True, False])
def test_a_staff_member_who_is_a_parent_keeps_their_staff_account(client, family, active):
    b = family
    StaffRole.objects.create(user=b.parent, organisation=b.org, kind="counter", granted_at=F.NOW)
    b.parent.is_active = active  # a deactivated staff account is kept as it is too
    b.parent.save(update_fields=["is_active"])
    personal_data.erasure_execute(
        request_id=b.request.pk, organisation_ids=[b.org.pk], user=b.agent
    )
    parent = get_user_model().objects.get(pk=b.parent.pk)
    assert parent.is_active is active and parent.email == f"{NAME}@example.org"
    assert not Guardian.objects.filter(user=parent).exists()


def test_an_agent_of_another_organisation_cannot_erase(client, family):
    b = family
    before = _personal(b)
    assert (
        personal_data.erasure_execute(
            request_id=b.request.pk, organisation_ids=[b.org.pk + 1000], user=b.agent
        )
        is None
    )
    stranger = get_user_model().objects.create_user("s@example.org", "s@example.org", "x" * 12)
    other = F.organisation()
    AgentRole.objects.create(organisation=other, user=stranger)
    client.force_login(stranger)
    assert client.post(b.url, {"action": "erase", "confirm": "yes"}).status_code == 403
    url = reverse("accounts:staff-erasure", args=[other.portal.slug, b.request.pk])
    assert client.post(url, {"action": "erase", "confirm": "yes"}).status_code == 404
    # A family cannot erase, not even its own file, without an agent.
    client.force_login(b.parent)
    assert client.post(b.url, {"action": "erase", "confirm": "yes"}).status_code == 403
    assert _personal(b) == before
