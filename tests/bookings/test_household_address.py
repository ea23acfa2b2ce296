"""A household's postal address: the family and an agent change it (journaled, bad input refused
naming the field), invoices and credit notes print it in the recipient block, the data download
holds it, the demo files give one."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation

from guichet.accounts import personal_data
from guichet.billing import pdf
from guichet.billing import services as billing_services
from guichet.bookings.config import ConfigError, parse_config
from guichet.bookings.demo import demo_paths
from guichet.bookings.households import HouseholdError, household_address_set, postal_address_clean
from guichet.bookings.models import AgentRole, Guardian, Household
from guichet.catalog.models import Organisation, Portal
from guichet.common.actor import Actor
from guichet.journal.models import Entry
from tests.billing import factories as F
from tests.billing.outputs_data import NOW, billed_town
from tests.bookings.test_services import World

pytestmark = pytest.mark.django_db

ADDRESS = "12 rue de la Paix\n44600 Saint-Nazaire"
ACTOR = Actor("test:1", "web")


@pytest.fixture
def world():
    return World()


def test_the_address_is_tidied_line_by_line():
    assert (
        postal_address_clean("  12  rue de la Paix \r\n\r\n 44600   Saint-Nazaire  \n") == ADDRESS
    )
    assert postal_address_clean("") == "" and postal_address_clean("  \n ") == ""


@pytest.mark.parametrize(
    "bad",
    [
        "12 rue de la Paix\t\n44600 Saint-Nazaire",  # a tab
        "12 rue de la Paix\x00",  # NUL
        "12 rue\u200bde la Paix",  # an invisible character
        "12 rue de la Paix\u2028Saint-Nazaire",  # a Unicode line separator
        "x" * 39,  # a line over the postal norm's 38 characters
        "\n".join(["ligne"] * 6),  # six lines under the name: seven in all
    ],
)
def test_bad_addresses_are_refused_naming_the_field(bad):
    with translation.override("en"), pytest.raises(HouseholdError) as exc:
        postal_address_clean(bad)
    assert exc.value.field == "postal_address" and exc.value.message.startswith("Postal address")


def test_a_change_is_journaled_without_the_address_and_a_repeat_is_not(world):
    hh, _ = world.household()
    assert household_address_set(household=hh, postal_address=ADDRESS, actor=ACTOR) is True
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS
    assert household_address_set(household=hh, postal_address=ADDRESS + "\n", actor=ACTOR) is False
    (entry,) = Entry.objects.filter(operation="bookings.household.address")
    assert entry.details == {"household": hh.pk, "empty": False}
    assert "Paix" not in json.dumps(entry.details) + json.dumps(entry.refs)
    household_address_set(household=hh, postal_address="", actor=ACTOR)
    assert Household.objects.get(pk=hh.pk).postal_address == ""
    assert (
        Entry.objects.filter(operation="bookings.household.address").last().details["empty"] is True
    )


def test_a_refused_address_changes_nothing(world):
    hh, _ = world.household()
    household_address_set(household=hh, postal_address=ADDRESS, actor=ACTOR)
    with pytest.raises(HouseholdError):
        household_address_set(household=hh, postal_address="1 rue\x07", actor=ACTOR)
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS
    assert Entry.objects.filter(operation="bookings.household.address").count() == 1


def _parent(world, hh, client):
    user = get_user_model().objects.create_user(f"parent{hh.pk}", password="x" * 12)
    Guardian.objects.create(organisation=world.org, household=hh, user=user)
    client.force_login(user)
    return reverse("bookings:address", args=[world.portal.slug])


def test_the_family_sees_and_changes_its_address(world, client):
    hh, _ = world.household()
    other, _ = world.household()
    url = _parent(world, hh, client)
    home = client.get(reverse("bookings:home", args=[world.portal.slug])).content.decode()
    assert 'id="h-address"' in home and url in home
    assert client.get(url).status_code == 200
    r = client.post(url, {"postal_address": ADDRESS})
    assert r.status_code == 302 and r["Location"].endswith("?enregistre=1")
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS
    assert Household.objects.get(pk=other.pk).postal_address == ""
    assert (
        "44600 Saint-Nazaire"
        in client.get(reverse("bookings:home", args=[world.portal.slug])).content.decode()
    )
    assert 'role="status"' in client.get(r["Location"]).content.decode()


def test_the_family_gets_a_clear_error_and_keeps_what_it_typed(world, client):
    hh, _ = world.household()
    url = _parent(world, hh, client)
    typed = "12 rue de la Paix et de la Liberté réunies\n44600 Saint-Nazaire"
    r = client.post(url, {"postal_address": typed})
    page = r.content.decode()
    assert (
        r.status_code == 400
        and 'role="alert"' in page
        and "38" in page
        and 'aria-invalid="true"' in page
    )
    assert "et de la Liberté réunies" in page  # the textarea keeps the input to correct it
    assert Household.objects.get(pk=hh.pk).postal_address == ""


def test_someone_without_a_family_file_cannot_post_an_address(world, client):
    world.household()
    client.force_login(get_user_model().objects.create_user("stranger", password="x" * 12))
    assert (
        client.post(
            reverse("bookings:address", args=[world.portal.slug]), {"postal_address": ADDRESS}
        ).status_code
        == 404
    )


def test_an_agent_changes_it_on_the_household_screen(world, client):
    hh, _ = world.household()
    user = get_user_model().objects.create_user("agent", password="x" * 12)
    AgentRole.objects.create(organisation=world.org, user=user)
    client.force_login(user)
    screen = reverse("bookings:agent-household", args=[world.portal.slug, hh.reference])
    url = reverse("bookings:agent-address", args=[world.portal.slug, hh.reference])
    assert url in client.get(screen).content.decode()
    assert client.post(url, {"postal_address": ADDRESS}).status_code == 302
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS
    assert Entry.objects.get(operation="bookings.household.address").channel == "counter"
    refused = client.post(url, {"postal_address": "1 rue\x1b[31m"})
    assert refused.status_code == 400 and "m-errors" in refused.content.decode()
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS
    # A parent is not an agent.
    client.force_login(get_user_model().objects.create_user("parent", password="x" * 12))
    assert client.post(url, {"postal_address": ""}).status_code == 403
    assert Household.objects.get(pk=hh.pk).postal_address == ADDRESS


needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext is not installed"
)


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"
    return tmp_path


@needs_pdftotext
def test_invoice_and_credit_note_print_the_address_under_the_name(media):
    from tests.billing.test_pdf import text_of

    b = billed_town()
    household_address_set(household=b.household, postal_address=ADDRESS, actor=ACTOR)
    b.invoice.household.refresh_from_db()
    text = text_of(pdf.invoice_pdf(b.invoice), media)
    name = b.household.display_name
    assert text.index(name) < text.index("12 rue de la Paix") < text.index("44600 Saint-Nazaire")
    note = billing_services.credit_note_create(
        invoice=b.invoice,
        actor=F.ACTOR,
        now=NOW + dt.timedelta(days=1),
        reason="Erreur",
        idempotency_key="cn-address",
    )
    note.household.refresh_from_db()
    assert "12 rue de la Paix 44600 Saint-Nazaire" in text_of(pdf.invoice_pdf(note), media)


@needs_pdftotext
def test_without_an_address_the_block_holds_the_name_and_file_only(media):
    from tests.billing.test_pdf import text_of

    b = billed_town()
    text = text_of(pdf.invoice_pdf(b.invoice), media)
    between = text.split(b.household.display_name, 1)[1].split(b.household.reference, 1)[0]
    assert between.strip() in ("Dossier famille", "Family file")  # no blank line, no "None"
    assert "None" not in text


def test_the_data_download_holds_it(world):
    hh, _ = world.household()
    household_address_set(household=hh, postal_address=ADDRESS, actor=ACTOR)
    hh.refresh_from_db()
    assert personal_data.household_export(hh)["household"]["postal_address"] == ADDRESS


def test_the_demo_families_have_an_address():
    from guichet.billing.demo import DEMO_DIR as BILLING_DEMO

    paths = [*demo_paths(), *sorted(BILLING_DEMO.glob("*-activities.yaml"))]
    assert len(paths) == 4
    for path in paths:
        config = parse_config(path.read_text(encoding="utf-8"), path.name)
        for h in config.households:
            lines = h.values["postal_address"].split("\n")
            assert 2 <= len(lines) <= 5 and lines[-1][:5].isdigit()


def test_a_config_file_with_a_bad_address_names_it():
    Organisation.objects.create(
        portal=Portal.objects.create(slug="t", name="t"), slug="ville", name="Ville"
    )
    text = (
        "format: 1\nportal: t\norganisation: ville\nhouseholds:\n  - reference: H1\n    name: Famille H\n"
        '    postal_address: "1 rue\\tX"\n'
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "t.yaml")
    assert "postal_address" in str(exc.value)


def test_the_page_and_its_error_speak_french(world, client):
    hh, _ = world.household()
    url = _parent(world, hh, client)
    assert "Adresse postale" in client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    r = client.post(url, {"postal_address": "x" * 40}, HTTP_ACCEPT_LANGUAGE="fr")
    assert "au plus 38\u00a0caractères" in r.content.decode()
