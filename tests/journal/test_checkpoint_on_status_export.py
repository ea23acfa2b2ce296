"""The static status export carries the journal checkpoint: a copy kept outside the servers."""

import datetime as dt

import pytest
from django.utils import timezone

from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.demo import seed_paths
from guichet.journal import checkpoint as cp
from guichet.journal.models import Head
from guichet.status.export import export_site
from guichet.status.notice import import_notice

pytestmark = pytest.mark.django_db


def test_the_static_export_prints_and_writes_the_checkpoint(tmp_path):
    path = seed_paths()[0]
    import_notice(path.read_text(encoding="utf-8"), path.name, actor=Actor.cli())
    portal = Portal.objects.order_by("pk").first()
    now = timezone.now().replace(microsecond=0)
    export_site(portal=portal, directory=tmp_path, now=now)

    written = cp.parse((tmp_path / "journal-checkpoint.txt").read_text())
    assert written.time == now.astimezone(dt.UTC)
    assert written.chains == {h.chain: (h.seq, h.hash) for h in Head.objects.all()}
    assert written.total > 0
    for page in ("index.html", "en/index.html"):
        html = (tmp_path / page).read_text()
        assert "journal-checkpoint" in html
        assert written.text().splitlines()[2] in html.replace("<wbr>", "")  # a chain line, verbatim once copied
