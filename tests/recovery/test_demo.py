"""The demo links the Saint-Nazaire family portal to its status board: with the 2024 notice,
booking and cancellation are open, online payment is closed (billing stopped since March)."""

import pytest
from django.utils import timezone

from guichet.common.actor import Actor
from guichet.demo import seed_paths
from guichet.recovery import gates
from guichet.recovery.demo import load_recovery_demo
from guichet.recovery.models import OnlineGate
from guichet.status.notice import import_notice

pytestmark = pytest.mark.django_db


def test_demo_gates_load_twice_and_follow_the_notice():
    path = next(p for p in seed_paths() if p.name == "saint-nazaire.yaml")
    import_notice(path.read_text(encoding="utf-8"), path.name, actor=Actor.cli())
    assert "3 added" in load_recovery_demo()[0]
    assert "3 unchanged" in load_recovery_demo()[0]
    org_id = OnlineGate.objects.values_list("organisation_id", flat=True).first()
    now = timezone.now()
    assert gates.gate(organisation_id=org_id, function="booking", now=now).open
    assert gates.gate(organisation_id=org_id, function="cancellation", now=now).open
    payment = gates.payment_gate(organisation_id=org_id, now=now)
    assert payment.closed and "acomptes" in payment.instead
