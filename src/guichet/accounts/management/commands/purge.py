from django.core.management.base import BaseCommand

from guichet.accounts.retention import RETENTION, purge
from guichet.common.actor import Actor


class Command(BaseCommand):
    help = (
        "Delete the personal data whose retention period has ended (docs/security.md, 'Retention'). "
        "--dry-run counts without deleting; --policy prints what is kept how long. Run it daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--policy", action="store_true", help="print the retention policy and stop")

    def handle(self, *args, dry_run=False, policy=False, **opts):
        if policy:
            for p in RETENTION:
                self.stdout.write(f"{p.kind}\tkept {p.keep}")
            return
        counts = purge(actor=Actor.cli(), dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for kind, n in counts.items():
            self.stdout.write(f"{kind}\t{verb} {n}")
