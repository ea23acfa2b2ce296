"""Issue 7: every form of Guichet, fed garbage by hypothesis, answers with clear errors and writes nothing.

Every ``Form`` (and ``ModelForm``) subclass defined under ``guichet.`` must have a factory in
``FACTORIES`` below; a new form without one fails ``test_every_form_is_fuzzed``. For each form,
hypothesis posts, for each field, nothing, an empty string, arbitrary text (control characters,
NUL, very long strings, numbers, dates in the wrong format) or a plausible value (one of the
choices, a well-formed date, so that ``clean()`` and its cross-field rules run too); file
fields get random bytes, sometimes behind a real PDF/JPEG/PNG signature, under random names.
``is_valid()`` must never raise; when the form is invalid, every error is on one of its fields
or on ``__all__`` and says something; and the journal (and every other table) is unchanged.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from zoneinfo import ZoneInfo

import pytest
from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import guichet
from guichet.journal.models import Entry
from guichet.status.services import apply_operations
from tests.bookings.test_services import BEFORE, World
from tests.recovery.helpers import EDITOR, catalogue, set_state

pytestmark = pytest.mark.django_db

SKIPPED_MODULES = ("migrations", "settings", "wsgi", "asgi", "urls")


def _import_all_guichet_modules() -> None:
    for info in pkgutil.walk_packages(guichet.__path__, prefix="guichet."):
        if any(part in SKIPPED_MODULES for part in info.name.split(".")):
            continue
        importlib.import_module(info.name)


def _subclasses(cls) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out.add(sub)
        out |= _subclasses(sub)
    return out


def guichet_forms() -> set[type]:
    _import_all_guichet_modules()
    return {f for f in _subclasses(forms.BaseForm) if f.__module__.startswith("guichet.")}


def _name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# --- A small world: a status board with an incident, a family activity, a household ----------


class Fixture:
    def __init__(self):
        from guichet.status.forms import EditContext

        self.world = World(capacity=5)
        catalogue(self.world)
        set_state(self.world, "inscriptions", "suspended")
        apply_operations(
            portal=self.world.portal,
            actor=EDITOR,
            now=BEFORE,
            operations=[
                {
                    "op": "contact.set",
                    "organisation": self.world.org.slug,
                    "key": "accueil",
                    "label": "Accueil",
                    "kind": "phone",
                    "value": "02 40 00 00 00",
                },
            ],
        )
        self.household, self.children = self.world.household(children=2)
        self.user = get_user_model().objects.create_user(
            "editor@example.org", password="x" * 12, is_staff=True, is_superuser=True
        )
        self.ctx = EditContext.build(self.world.portal, self.user, BEFORE)


def _ctx(fx):
    return {"ctx": fx.ctx}


def _org(fx):
    return {"organisation": fx.world.org}


def _none(fx):
    return {}


# form (module.qualname) -> keyword arguments it needs, built from the fixture.
FACTORIES = {
    "guichet.status.forms.ManageForm": _ctx,
    "guichet.status.forms.IncidentForm": _ctx,
    "guichet.status.forms.UpdateForm": _ctx,
    "guichet.status.forms.AvailabilityForm": _ctx,
    "guichet.status.forms.RemoveRowForm": _ctx,
    "guichet.status.forms.AffectedForm": _ctx,
    "guichet.status.forms.UnlistForm": _ctx,
    "guichet.status.forms.TargetForm": _ctx,
    "guichet.status.forms.AdvisoryForm": _ctx,
    "guichet.status.forms.CloseForm": _ctx,
    "guichet.status.views_subscriptions.SubscribeForm": lambda fx: {"portal": fx.world.portal},
    "guichet.bookings.forms.BasketModeForm": _none,
    "guichet.bookings.forms.JustificationForm": _none,
    "guichet.bookings.forms.AgentJustificationForm": _none,
    "guichet.bookings.forms.AgentBookForm": lambda fx: {
        "children": fx.children, "units": fx.world.activity.units.order_by("position")},
    "guichet.bookings.forms.ReasonForm": _none,
    "guichet.accounts.forms.CodeForm": _none,
    "guichet.accounts.forms.SetupCodeForm": _none,
    "guichet.accounts.forms.SignupForm": _none,
    "guichet.accounts.forms.InviteForm": _none,
    "guichet.recovery.forms._PaperBase": _none,
    "guichet.recovery.forms.PaperBookingForm": _org,
    "guichet.recovery.forms.PaperDepositForm": _none,
    "guichet.recovery.forms.PaperVoidForm": _none,
    "guichet.recovery.forms.PaperImportForm": _none,
}

FORMS = sorted(guichet_forms(), key=_name)


def test_every_form_is_fuzzed():
    """A new form must be added to FACTORIES (and so to the fuzzing below)."""
    names = {_name(f) for f in FORMS}
    assert len(names) >= 20, names  # the discovery really found the forms
    assert names - FACTORIES.keys() == set(), (
        "forms without a factory in tests/test_bad_input_forms.py"
    )
    assert FACTORIES.keys() - names == set(), "factories for forms that no longer exist"


# --- What to post ------------------------------------------------------------------------

GARBAGE = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20).map(
        lambda s: s + "\x00"
    ),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "31/02/2024",
            "2024-13-45",
            "2024-02-30T25:61",
            "0001-01-01T00:00",
            "9999-12-31T23:59",
            "10/07/2024",
            "2024-07-10",
            "24:00",
            "-1",
            "0",
            "1e309",
            "NaN",
            " ",
            "\u00a0",
            "٣",
            "１２３",
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "a" * 5000,
            "é" * 70_000,
        ]
    ),
)

SIGNATURES = [b"", b"%PDF-", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"\xef\xbb\xbf"]


def _plausible(name, field) -> list[str]:
    """Values the field would accept, so that clean() and the cross-field rules also run."""
    if isinstance(field, forms.ChoiceField):
        out = []
        for value, label in field.choices:
            if isinstance(label, (list, tuple)):  # an optgroup
                out += [str(v) for v, _ in label]
            else:
                out.append(str(value))
        return out
    if isinstance(field, forms.DateTimeField):
        return ["2024-11-20T10:00", "2024-11-21T08:30", "2025-01-01T00:00"]
    if isinstance(field, forms.DateField):
        return ["2024-11-20", "2024-11-25", "2025-07-14"]
    if isinstance(field, forms.TimeField):
        return ["09:00", "17:45"]
    if isinstance(field, forms.IntegerField):
        return ["1", "42"]
    if isinstance(field, forms.EmailField):
        return ["parent@example.org"]
    if isinstance(field, forms.BooleanField):
        return ["on"]
    return BY_NAME.get(name, ["Un texte", "A", "F0001"])


# Plausible text for the CharFields whose content a clean_*() method parses.
BY_NAME = {
    "amount": ["45", "45,50", "0,01"],
    "children": ["Léa, Tom", "Enfant0"],
    "dates": ["2024-07-10\n10/07/2024", "2024-11-27"],
    "password1": ["une phrase assez longue"],
    "password2": ["une phrase assez longue"],
    "idem": ["0123456789abcdef0123456789abcdef", ""],
    "text": ["series,number\nA,1\n"],
}


@st.composite
def uploads(draw):
    head = draw(st.sampled_from(SIGNATURES))
    body = draw(st.binary(max_size=300))
    ext = draw(st.sampled_from(["pdf", "jpg", "jpeg", "png", "PDF", "csv", "exe", "", "pdf.exe"]))
    stem = draw(
        st.text(
            alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/\\\x00"),
            max_size=30,
        )
    )
    name = f"{stem}.{ext}" if ext else stem or "file"
    return SimpleUploadedFile(
        name,
        head + body,
        content_type=draw(
            st.sampled_from(
                ["application/pdf", "image/png", "text/csv", "application/octet-stream"]
            )
        ),
    )


def _post(draw, form) -> tuple[MultiValueDict, MultiValueDict]:
    """Either garbage everywhere, or plausible values with one field spoilt (so clean() runs)."""
    data, files = MultiValueDict(), MultiValueDict()
    names = list(form.fields)
    spoilt = draw(st.sampled_from([None, *names])) if draw(st.booleans()) else "everything"
    for name, field in form.fields.items():
        bad = spoilt in ("everything", name)
        if isinstance(field, forms.FileField):
            if bad and draw(st.booleans()):
                files.setlist(name, [draw(uploads())])
            elif not bad:
                files.setlist(
                    name, [SimpleUploadedFile("scan.pdf", b"%PDF-1.4 scan", "application/pdf")]
                )
            continue
        plausible = _plausible(name, field)
        if not bad and plausible:
            data.setlist(name, [draw(st.sampled_from(plausible))])
            continue
        one = st.one_of(st.just(""), GARBAGE, *([st.sampled_from(plausible)] if plausible else []))
        how = draw(st.sampled_from(["absent", "one", "one", "one", "several"]))
        if how == "one":
            data.setlist(name, [draw(one)])
        elif how == "several":
            data.setlist(name, draw(st.lists(one, min_size=0, max_size=3)))
    return data, files


def _row_counts() -> dict[str, int]:
    return {
        m._meta.db_table: m._default_manager.count() for m in apps.get_models() if not m._meta.proxy
    }


@pytest.mark.parametrize("form_class", FORMS, ids=_name)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(draw=st.data())
def test_garbage_gets_field_errors_and_writes_nothing(form_class, draw, fixture):
    kwargs = FACTORIES[_name(form_class)](fixture)
    shape = form_class(**kwargs)  # the fields, some of them built from the database
    data, files = _post(draw.draw, shape)
    journal = Entry.objects.count()

    form = form_class(data, files=files, **kwargs)
    valid = form.is_valid()  # must not raise

    if not valid:
        assert form.errors
        for name, messages in form.errors.items():
            assert name == forms.forms.NON_FIELD_ERRORS or name in form.fields, (name, messages)
            assert messages and all(str(m).strip() for m in messages), (name, messages)
    assert Entry.objects.count() == journal


@pytest.fixture
def fixture(db):
    fx = Fixture()
    before = _row_counts()
    yield fx
    assert _row_counts() == before, "a form wrote to the database"


def test_a_plausible_post_can_be_valid(fixture):
    """Control: the fuzzing is not only ever producing invalid forms (the plausible values work)."""
    from guichet.recovery.forms import PaperDepositForm

    form = PaperDepositForm(
        {
            "series": "A",
            "number": "12",
            "received_on": "2024-11-20",
            "received_time": "09:00",
            "household": "F0001",
            "amount": "45,50",
            "method": "cash",
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["amount"] == 4550
    assert form.received_at() == dt.datetime(2024, 11, 20, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
