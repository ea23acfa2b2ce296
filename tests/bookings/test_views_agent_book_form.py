"""The agents' booking form (a paper form or a phone call entered at the counter): the unit is
chosen from the activity's units by their name, in French or English, never typed as a code;
bad input gets an error naming the field, books nothing, and the form shows again what was
chosen."""

from __future__ import annotations

import pytest
import time_machine
from django.utils import translation

from guichet.bookings.forms import AgentBookForm
from guichet.bookings.models import Activity, Booking, Unit
from tests.bookings.test_services import BEFORE, WEDNESDAY

from .test_views_agent import agent, base, world  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture
def named(world):  # noqa: F811
    """The units with the names families and agents read."""
    for code, fr, en in (("journee", "Journée complète", "Full day"), ("matin-repas", "Matin + repas", "Morning + meal"),
                         ("repas-apres-midi", "Repas + après-midi", "Meal + afternoon")):
        Unit.objects.filter(activity=world.activity, code=code).update(name=fr, name_en=en)
    return world


def household_page(client, town, hh, lang="fr") -> str:
    with time_machine.travel(BEFORE, tick=False), translation.override(lang):
        r = client.get(base(town) + f"households/{hh.reference}/?date={WEDNESDAY:%Y-%m-%d}",
                       HTTP_ACCEPT_LANGUAGE=lang)
    assert r.status_code == 200
    return r.content.decode()


def test_the_unit_is_chosen_by_its_name_in_the_pages_language(named, agent):  # noqa: F811
    session = named.session()
    hh, _kids = named.household()
    page = household_page(agent, named, hh)
    select = page[page.index(f'id="unit-{session.pk}"'):]
    select = select[:select.index("</select>")]
    assert '<option value="matin-repas">Matin + repas</option>' in select
    assert '<input id="unit' not in page and 'name="unit" type="text"' not in page  # nothing to type
    form = AgentBookForm(children=[], units=named.activity.units.order_by("position"))
    with translation.override("en"):
        assert [label for _v, label in form.fields["unit"].choices] == ["Full day", "Morning + meal",
                                                                        "Meal + afternoon"]
    with translation.override("fr"):
        assert [label for _v, label in form.fields["unit"].choices][1] == "Matin + repas"


def test_a_chosen_unit_books_it(named, agent):  # noqa: F811
    session = named.session()
    hh, (child,) = named.household()
    with time_machine.travel(BEFORE, tick=False):
        r = agent.post(base(named) + f"households/{hh.reference}/book/",
                       {"child": child.pk, "session": session.pk, "unit": "repas-apres-midi"})
    assert r.status_code == 302
    assert Booking.objects.get().unit.name == "Repas + après-midi"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"unit": "demi-journee"}, "Unit"),  # a code that is not one of the activity's units
        ({"unit": ""}, "Unit"),
        ({"unit": "journee\x00"}, "Unit"),
        ({"child": "999999"}, "Child"),  # not a child of this family
        ({"child": "Léa"}, "Child"),
        ({"reason": "x" * 301}, "Reason"),
    ],
)
def test_bad_input_names_the_field_books_nothing_and_keeps_the_choices(named, agent, change, field):  # noqa: F811
    session = named.session()
    hh, (child,) = named.household()
    data = {"child": child.pk, "session": session.pk, "unit": "matin-repas", "reason": "Appel de la mère"}
    with time_machine.travel(BEFORE, tick=False), translation.override("fr"):
        r = agent.post(base(named) + f"households/{hh.reference}/book/", {**data, **change},
                       HTTP_ACCEPT_LANGUAGE="fr")
        label = translation.gettext(field)
    assert r.status_code == 400
    body = r.content.decode()
    errors = body[body.index('class="m-errors"'):]
    errors = errors[:errors.index("</div>")]
    assert label in errors
    assert not Booking.objects.exists()
    if "reason" not in change:
        assert 'value="Appel de la mère"' in body  # the reason written is not lost
    if "unit" not in change:
        assert '<option value="matin-repas" selected>' in body


def test_a_unit_of_another_activity_is_refused(named, agent):  # noqa: F811
    other = Activity.objects.create(organisation=named.org, slug="peri", name="Périscolaire", kind="after_school",
                                    parts=["day"], booking_rule="same day at 23:59",
                                    cancellation_rule="same day at 23:59")
    Unit.objects.create(organisation=named.org, activity=other, code="soir", name="Soir", parts=["day"])
    session = named.session()
    hh, (child,) = named.household()
    with time_machine.travel(BEFORE, tick=False):
        r = agent.post(base(named) + f"households/{hh.reference}/book/",
                       {"child": child.pk, "session": session.pk, "unit": "soir"})
    assert r.status_code == 400 and not Booking.objects.exists()


@pytest.mark.parametrize("value", ["", "abc", "0", "-3", "99999999999999999999", "1\x00"])
def test_a_bad_session_number_is_a_clear_error(named, agent, value):  # noqa: F811
    hh, (child,) = named.household()
    with time_machine.travel(BEFORE, tick=False):
        r = agent.post(base(named) + f"households/{hh.reference}/book/",
                       {"child": child.pk, "session": value, "unit": "journee"})
    assert r.status_code == 400 and 'class="m-errors"' in r.content.decode()
    assert not Booking.objects.exists()
