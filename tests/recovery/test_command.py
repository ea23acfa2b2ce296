"""``guichet recovery``: gates file, paper import and numbering from the command line."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from guichet.recovery.models import OnlineGate, PaperForm
from tests.bookings.test_services import World

from .helpers import catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    w = World()
    w.procedures = catalogue(w)
    return w


def test_gates_file_loads_twice_the_same_and_errors_name_the_path(world, tmp_path, capsys):
    f = tmp_path / "gates.yaml"
    f.write_text(f"""portal: {world.portal.slug}
organisation: {world.org.slug}
gates:
  - {{function: booking, activity: mercredis, service: enfance, procedure: inscriptions}}
  - {{function: payment, service: enfance, procedure: paiement, when_degraded: close}}
""")
    call_command("recovery", "gates", "load", str(f))
    call_command("recovery", "gates", "load", str(f))
    out = capsys.readouterr().out
    assert "2 added" in out and "2 unchanged" in out and OnlineGate.objects.count() == 2
    call_command("recovery", "gates", "show")
    assert "booking\tmercredis\tenfance/inscriptions\twarn\topen" in capsys.readouterr().out
    f.write_text(f"""portal: {world.portal.slug}
organisation: {world.org.slug}
gates:
  - {{function: bookings, service: enfance, procedure: nope}}
  - {{function: payment, activity: mercredis, service: enfance, procedure: paiement}}
""")
    with pytest.raises(CommandError) as exc:
        call_command("recovery", "gates", "load", str(f))
    msg = str(exc.value)
    assert "gates[0].function" in msg and "gates[0].procedure" in msg and "gates[1].activity" in msg
    assert OnlineGate.objects.count() == 2  # unchanged
    with pytest.raises(CommandError, match="no such file"):
        call_command("recovery", "gates", "load", str(tmp_path / "missing.yaml"))


def test_paper_import_and_numbering(world, tmp_path, capsys):
    world.session(day=dt.date(2024, 12, 4))
    hh, (child,) = world.household()
    f = tmp_path / "forms.csv"
    f.write_text("series;number;received_at;household;child;activity;site;date;unit\n"
                 f"A;1;2024-11-27 09:00;{hh.reference};{child.first_name};mercredis;centre;2024-12-04;journee\n"
                 f"A;4;2024-11-27 09:30;{hh.reference};{child.first_name};mercredis;centre;2024-12-11;journee\n")
    with pytest.raises(CommandError) as exc:  # 11 December has no session
        call_command("recovery", "paper", "import", str(f), "--portal", world.portal.slug, "--organisation", "ville")
    assert "line 3 (date)" in str(exc.value) and not PaperForm.objects.exists()
    f.write_text(f.read_text().replace("2024-12-11", "2024-12-04").replace(";4;2024-11-27 09:30;", ";4;2024-11-27 09:30;"))
    world.household()  # unused family
    call_command("recovery", "paper", "import", str(f), "--portal", world.portal.slug, "--organisation", "ville")
    assert "2 forms: 2 entered" in capsys.readouterr().out
    call_command("recovery", "paper", "numbering", "--portal", world.portal.slug, "--organisation", "ville")
    out = capsys.readouterr().out
    assert "booking A: 1-4, 2 entered, gaps: 2-3" in out
    with pytest.raises(CommandError, match="no organisation"):
        call_command("recovery", "paper", "numbering", "--portal", "x", "--organisation", "y")
