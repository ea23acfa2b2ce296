"""``guichet demo`` run again keeps what editors changed on the demo pages (bin/demo runs it at
every start): the notices are imported only the first time."""

import io

import pytest
from django.core.management import call_command

from guichet.catalog.models import Portal
from guichet.status.models import ChangeSet

pytestmark = pytest.mark.django_db


def test_running_the_demo_again_keeps_the_editors_changes():
    call_command("demo", stdout=io.StringIO())
    assert set(Portal.objects.values_list("slug", flat=True)) >= {"maisons-alfort", "saint-nazaire"}
    changesets = ChangeSet.objects.count()
    Portal.objects.filter(slug="maisons-alfort").update(not_listed_statement="Changé par un rédacteur")
    out = io.StringIO()
    call_command("demo", stdout=out)
    assert "demo page 'maisons-alfort' already loaded: kept as it is" in out.getvalue()
    assert Portal.objects.get(slug="maisons-alfort").not_listed_statement == "Changé par un rédacteur"
    assert ChangeSet.objects.count() == changesets  # no new "import" published over their work
