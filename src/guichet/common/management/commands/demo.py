"""``guichet demo``: load the Saint-Nazaire and Maisons-Alfort demo (idempotent).

A demo page already loaded is left as it is: editors may have changed it since (suspended a
procedure, published an update), and running the demo again must not undo their work. Delete the
database (``var/``) to start again from the notices.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.demo import seed_paths
from guichet.status.notice import NoticeError, import_notice, parse_notice


class Command(BaseCommand):
    help = "Load the demo pages (Saint-Nazaire 2024, Maisons-Alfort 2022). Running it again changes nothing."

    def handle(self, *args, **options):
        for path in seed_paths():
            text = path.read_text(encoding="utf-8")
            try:
                slug = parse_notice(text, path.name).portal
                if Portal.objects.filter(slug=slug).exists():
                    self.stdout.write(f"demo page '{slug}' already loaded: kept as it is (editors' changes included)")
                    continue
                cs = import_notice(text, path.name, actor=Actor.cli())
            except NoticeError as e:
                raise CommandError(f"demo data {path.name} is invalid:\n{e}", returncode=2) from None
            self.stdout.write(f"demo page '{cs.portal.slug}' loaded from {path.name}")
        # Each module's demo, in dependency order (billing prices the bookings' demo families).
        from guichet.billing.demo import load_billing_demo
        from guichet.bookings.demo import load_bookings_demo
        from guichet.recovery.demo import load_recovery_demo
        from guichet.water.demo import load_water_demo

        for load in (load_bookings_demo, load_billing_demo, load_water_demo, load_recovery_demo):
            lines = load()
            if lines:
                self.stdout.write("\n".join(lines))
