from django.core.management.base import BaseCommand

from guichet.journal.selectors import verify_all


class Command(BaseCommand):
    help = "The journal: 'guichet journal verify' checks every chain and names the first bad entry."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="verify")
        sub.add_parser("verify", help="verify every hash chain of the journal")

    def handle(self, *args, action, **options):
        verdicts = verify_all()
        bad = [v for v in verdicts if not v.ok]
        for v in verdicts:
            if v.ok:
                self.stdout.write(f"chain {v.chain}: {v.count} entries, OK (head {v.last_hash[:16]}…)")
            else:
                self.stdout.write(
                    self.style.ERROR(
                        f"chain {v.chain}: BROKEN at entry #{v.problem.seq}: {v.problem.reason} "
                        f"({v.count} entries verified before it)"
                    )
                )
        total = sum(v.count for v in verdicts)
        if bad:
            self.stderr.write(self.style.ERROR(f"journal verification FAILED on {len(bad)} chain(s)"))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"journal OK: {total} entries in {len(verdicts)} chain(s)"))
