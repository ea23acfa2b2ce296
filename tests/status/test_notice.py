"""Notice files: errors that name the line and the field, all-or-nothing imports, idempotence,
and a dump that reads back to the same text."""

from __future__ import annotations

import textwrap

import pytest

from guichet.catalog.models import ContactPoint, Organisation, Portal, Procedure, Service
from guichet.demo import DEMO_DIR
from guichet.journal.models import Entry
from guichet.status.models import (
    Advisory,
    AffectedService,
    Availability,
    ChangeSet,
    Incident,
    IncidentUpdate,
    RestorationTarget,
)
from guichet.status.notice import NoticeError, dump_notice, import_notice, load_notice, parse_notice

MODELS = (Portal, Organisation, Service, Procedure, ContactPoint, Incident, IncidentUpdate, AffectedService,
          Availability, RestorationTarget, Advisory, ChangeSet, Entry)

SMALL = textwrap.dedent("""\
    format: guichet-notice/1
    portal:
      slug: petiteville
      name: Petiteville
    organisations:
      - slug: ville
        name: Ville de Petiteville
    contacts:
      - key: accueil-tel
        label: Accueil
        kind: phone
        value: 01 02 03 04 05
        hours:
          - days: mon-fri
            slots: ["08:30-12:00"]
    services:
      - slug: etat-civil
        name: État civil
        procedures:
          - slug: actes
            name: Actes
    incidents:
      - slug: panne
        title: Panne
        started_at: 2024-05-01T08:00:00+02:00
        services:
          - service: etat-civil
            availability:
              - procedure: actes
                channel: online
                state: suspended
                contacts: [accueil-tel]
                instead: Demandez vos actes à l'accueil de la mairie.
    """)


def test_a_disrupted_row_without_what_to_do_instead_names_its_line_and_field():
    text = edit(SMALL, "            instead: Demandez vos actes à l'accueil de la mairie.\n", "")
    (err,) = errors_of(text, "small.yaml")
    assert err.startswith("small.yaml:")
    assert "incidents[0].services[0].availability[0].instead: required when the state is degraded or suspended" in err
    # The same row working normally needs nothing instead.
    assert load_notice(edit(text, "state: suspended", "state: normal"), "small.yaml")


def seed_text(name: str) -> str:
    return (DEMO_DIR / name).read_text(encoding="utf-8")


def counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in MODELS}


def errors_of(text: str, source: str = "notice.yaml") -> list[str]:
    with pytest.raises(NoticeError) as exc:
        load_notice(text, source)
    return [str(e) for e in exc.value.errors]


def edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


# --- Reading ---------------------------------------------------------------------------------


def test_a_small_notice_becomes_operations():
    slug, ops = load_notice(SMALL, "small.yaml")
    assert slug == "petiteville"
    assert [op["op"] for op in ops] == [
        "portal.set", "organisation.set", "service.set", "procedure.set", "contact.set", "incident.set",
        "affected.set", "availability.set",
    ]
    # the single organisation is implied
    assert ops[2]["organisation"] == "ville"
    assert ops[7] | {} == {**ops[7], "incident": "panne", "service": "etat-civil", "contacts": ["accueil-tel"]}


def test_json_is_accepted():
    import json

    import yaml

    slug, ops = load_notice(json.dumps(yaml.safe_load(SMALL), default=str), "small.json")
    assert slug == "petiteville" and len(ops) == 8


def test_a_wrong_state_names_the_line_and_the_path():
    text = edit(SMALL, "state: suspended", "state: broken")
    line = text.splitlines().index("            state: broken") + 1
    assert errors_of(text, "petiteville.yaml") == [
        f"petiteville.yaml:{line}: incidents[0].services[0].availability[0].state: "
        "'broken' is not one of: normal, degraded, suspended"
    ]


def test_yaml_syntax_errors_give_line_and_column():
    text = edit(SMALL, "title: Panne", "title: Panne : totale")
    (err,) = errors_of(text)
    line = text.splitlines().index("    title: Panne : totale") + 1
    assert err.startswith(f"notice.yaml:{line}: not valid YAML, column ")


def test_unknown_duplicate_and_mistyped_fields_are_all_reported():
    text = edit(SMALL, "  name: Petiteville\n", "  name: Petiteville\n  name: Encore\n  requires_approval: oui\n  colour: red\n")
    errs = errors_of(text)
    assert any(": name: 'name' is given twice in the same block (first on line 4)" in e for e in errs)
    text = edit(SMALL, "  name: Petiteville\n", "  name: Petiteville\n  requires_approval: oui\n  colour: red\n")
    errs = errors_of(text)
    assert "notice.yaml:5: portal.requires_approval: expected true or false" in errs
    assert any(e.startswith("notice.yaml:6: portal.colour: unknown field") for e in errs)


def test_dangling_references_are_reported_with_their_line():
    text = edit(SMALL, "contacts: [accueil-tel]", "contacts: [accueil-tell]")
    text = edit(text, "- procedure: actes", "- procedure: acte")
    text = edit(text, "- service: etat-civil", "- service: etat-civill")
    lines = text.splitlines()
    errs = errors_of(text)
    svc = lines.index("      - service: etat-civill") + 1
    assert f"notice.yaml:{svc}: incidents[0].services[0].service: no service 'etat-civill' in this notice" in errs
    contact = lines.index("            contacts: [accueil-tell]") + 1
    assert f"notice.yaml:{contact}: incidents[0].services[0].availability[0].contacts[0]: no contact 'accueil-tell' in this notice" in errs


def test_unknown_procedure_of_a_known_service():
    text = edit(SMALL, "- procedure: actes", "- procedure: acte")
    line = text.splitlines().index("          - procedure: acte") + 1
    assert errors_of(text) == [
        f"notice.yaml:{line}: incidents[0].services[0].availability[0].procedure: "
        "no procedure 'acte' in service 'etat-civil' (declared: actes)"
    ]


def test_hours_errors_point_inside_the_schedule():
    text = edit(SMALL, 'slots: ["08:30-12:00"]', 'slots: ["8h30-12h"]')
    line = text.splitlines().index('        slots: ["8h30-12h"]') + 1
    (err,) = errors_of(text)
    assert err.startswith(f"notice.yaml:{line}: contacts[0].hours[0].slots[0]: ")
    assert "8h30-12h" in err


def test_missing_and_wrong_format():
    assert errors_of("") == ["notice.yaml: the file is empty"]
    assert errors_of("- a\n- b\n") == ["notice.yaml:1: (document): expected a block of fields (key: value)"]
    (err,) = errors_of(edit(SMALL, "guichet-notice/1", "guichet-notice/9"))
    assert err == "notice.yaml:1: format: 'guichet-notice/9' is not a format this version reads (expected guichet-notice/1)"


def test_several_organisations_require_naming_the_owner():
    text = edit(SMALL, "organisations:\n", "organisations:\n  - slug: agglo\n    name: Agglo\n")
    errs = errors_of(text)
    assert any("services[0].organisation: required when the notice has several organisations" in e for e in errs)


def test_both_seeds_are_valid():
    for name, slug in (("saint-nazaire.yaml", "saint-nazaire"), ("maisons-alfort.yaml", "maisons-alfort")):
        notice = parse_notice(seed_text(name), name)
        assert notice.portal == slug


# --- Importing -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_bad_file_changes_nothing():
    import_notice(seed_text("maisons-alfort.yaml"), "maisons-alfort.yaml")
    before = counts()
    bad = edit(seed_text("maisons-alfort.yaml"), "state: suspended", "state: broken")
    with pytest.raises(NoticeError):
        import_notice(bad, "maisons-alfort.yaml")
    assert counts() == before


@pytest.mark.django_db
def test_an_error_found_while_publishing_names_the_line_and_changes_nothing():
    import_notice(SMALL, "small.yaml")
    # The same service slug, now claimed by a second organisation of the page.
    text = edit(SMALL, "organisations:\n  - slug: ville\n", "organisations:\n  - slug: autre\n    name: Autre\n  - slug: ville\n")
    text = edit(text, "  - slug: etat-civil\n", "  - slug: etat-civil\n    organisation: autre\n")
    text = text.replace("  - key: accueil-tel\n", "  - key: accueil-tel\n    organisation: ville\n")
    text = text.replace("  - slug: panne\n", "  - slug: panne\n    organisation: ville\n")
    before = counts()
    with pytest.raises(NoticeError) as exc:
        import_notice(text, "small.yaml")
    line = text.splitlines().index("  - slug: etat-civil") + 1
    assert [str(e) for e in exc.value.errors] == [
        f"small.yaml:{line}: services[0].slug: service 'etat-civil' already belongs to another organisation of this page"
    ]
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["saint-nazaire.yaml", "maisons-alfort.yaml"])
def test_importing_the_same_file_twice_changes_nothing_the_second_time(name):
    import_notice(seed_text(name), name)
    before = counts()
    last = Entry.objects.order_by("-pk").first().pk
    import_notice(seed_text(name), name)
    after = counts()
    # Only the changeset record and its journal entry are new.
    assert after == {**before, "ChangeSet": before["ChangeSet"] + 1, "Entry": before["Entry"] + 1}
    assert list(Entry.objects.filter(pk__gt=last).values_list("operation", flat=True)) == ["status.changeset.publish"]


def _wipe(slug: str) -> None:
    """Remove a page entirely (test helper: rows, not through services)."""
    portal = Portal.objects.get(slug=slug)
    for model in (Availability, RestorationTarget, AffectedService, IncidentUpdate, Advisory, Incident, ContactPoint,
                  Procedure, Service):
        model.objects.filter(organisation__portal=portal).delete()
    ChangeSet.objects.filter(portal=portal).delete()
    Organisation.objects.filter(portal=portal).delete()
    portal.delete()


@pytest.mark.django_db
@pytest.mark.parametrize("name,slug", [("saint-nazaire.yaml", "saint-nazaire"), ("maisons-alfort.yaml", "maisons-alfort")])
def test_a_dump_reads_back_to_the_same_text(name, slug):
    import_notice(seed_text(name), name)
    first = dump_notice(Portal.objects.get(slug=slug))
    _wipe(slug)
    assert not Service.objects.filter(organisation__portal__slug=slug).exists()
    import_notice(first, f"{slug}-dump.yaml")
    second = dump_notice(Portal.objects.get(slug=slug))
    assert second == first
    # and re-importing the dump over the seed's own data changes nothing either
    before = counts()
    import_notice(second, f"{slug}-dump.yaml")
    assert counts()["Availability"] == before["Availability"]
    assert counts()["Entry"] == before["Entry"] + 1


@pytest.mark.django_db
def test_a_dump_keeps_every_seed_fact():
    import_notice(seed_text("saint-nazaire.yaml"), "saint-nazaire.yaml")
    text = dump_notice(Portal.objects.get(slug="saint-nazaire"))
    for fact in ("02 51 16 48 48", "06 49 61 18 03", "days: mon-wed,fri-sun", "slots: ['09:00-12:00']",
                 "state: degraded", "channel: on_call_mobile", "precision: period",
                 "format: guichet-notice/1", "organisation: carene"):
        assert fact in text


@pytest.mark.django_db
def test_a_revised_target_keeps_its_history_and_the_dump_shows_the_current_one():
    import_notice(SMALL, "small.yaml")
    text = SMALL + "        targets:\n          - precision: period\n            text: Cet été\n"
    import_notice(text, "small.yaml")
    import_notice(text.replace("Cet été", "Fin juin"), "small.yaml")
    assert RestorationTarget.objects.count() == 2
    dumped = dump_notice(Portal.objects.get(slug="petiteville"))
    assert "text: Fin juin" in dumped and "Cet été" not in dumped


@pytest.mark.django_db
def test_the_other_town_example_imports_without_code_changes():
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "other-town.yaml"
    cs = import_notice(path.read_text(encoding="utf-8"), path.name)
    portal = cs.portal
    assert Organisation.objects.filter(portal=portal).count() >= 3  # communes sharing one switchboard
    assert Availability.objects.filter(organisation__portal=portal, channel="post", state="normal").exists()
    assert Availability.objects.filter(organisation__portal=portal, state="suspended").exists()
    # it dumps and reads back
    first = dump_notice(portal)
    assert load_notice(first, "dump.yaml")[0] == portal.slug


def test_an_impossible_date_is_an_error_naming_its_line_not_a_crash():
    text = (
        "format: guichet-notice/1\n"
        "portal: {slug: test, name: Test}\n"
        "organisations: [{slug: ville, name: Ville}]\n"
        "incidents:\n"
        "  - slug: panne\n"
        "    title: Panne\n"
        "    started_at: 2024-13-01\n"
    )
    with pytest.raises(NoticeError) as e:
        load_notice(text, "bad.yaml")
    assert "bad.yaml:7:" in str(e.value)
    assert "2024-13-01" in str(e.value)


REMOVAL_BASE = """\
format: guichet-notice/1
portal: {slug: rm, name: Ville}
organisations: [{slug: ville, name: Ville}]
services:
  - slug: eau
    name: Eau
    procedures: [{slug: factures, name: Factures}, {slug: accueil, name: Accueil}]
  - slug: etat-civil
    name: État civil
    procedures: [{slug: actes, name: Actes}]
incidents:
  - slug: panne
    title: Panne
    started_at: 2024-05-01T08:00:00+02:00
    services:
"""


def test_remove_true_takes_a_row_and_a_service_off_the_page(db):
    from django.utils import timezone

    from guichet.catalog.models import Portal
    from guichet.status.selectors import page_state

    import_notice(REMOVAL_BASE + """\
      - service: eau
        availability:
          - {procedure: factures, state: suspended, instead: Payez plus tard.}
          - {procedure: accueil, channel: phone, state: degraded, instead: Écrivez-nous.}
      - service: etat-civil
        availability:
          - {procedure: actes, state: degraded, instead: Venez en mairie.}
""", "first.yaml")
    import_notice(REMOVAL_BASE + """\
      - service: eau
        availability:
          - {procedure: accueil, channel: phone, remove: true}
      - service: etat-civil
        remove: true
""", "second.yaml")
    state = page_state(Portal.objects.get(slug="rm"), timezone.now())
    eau = state.service("eau")
    assert [(pv.procedure.slug, [r.state for r in pv.rows]) for pv in eau.procedures] == [("factures", ["suspended"])]
    assert not state.service("etat-civil").listed  # works normally again


def test_remove_accepts_only_true(db):
    with pytest.raises(NoticeError) as e:
        load_notice(REMOVAL_BASE + """\
      - service: eau
        remove: yes please
""", "bad.yaml")
    assert "bad.yaml:17: incidents[0].services[0].remove: only 'remove: true' is allowed" in str(e.value)
