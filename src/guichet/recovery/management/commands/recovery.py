"""``guichet recovery``: degraded mode and coming back, from the command line.

    guichet recovery gates load FILE        link online functions to the status board (YAML)
    guichet recovery gates show [--portal P]   the gates and the state of each function now
    guichet recovery paper import FILE --portal P --organisation O [--mode all_or_nothing]
    guichet recovery paper numbering --portal P --organisation O   gaps and duplicates
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.recovery import config, selectors, services


class Command(BaseCommand):
    help = "Degraded mode: gates to the status board, paper forms entered later, numbering gaps."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        gates = sub.add_parser("gates", help="Online functions and the status board.").add_subparsers(
            dest="action", required=True)
        gates.add_parser("load", help="Load a gates file (YAML).").add_argument("file")
        show = gates.add_parser("show", help="Show the gates and the state of each function now.")
        show.add_argument("--portal")
        paper = sub.add_parser("paper", help="Paper forms.").add_subparsers(dest="action", required=True)
        imp = paper.add_parser("import", help="Enter a CSV file of paper booking forms.")
        imp.add_argument("file")
        num = paper.add_parser("numbering", help="Report gaps and duplicates in form numbering.")
        for p in (imp, num):
            p.add_argument("--portal", required=True)
            p.add_argument("--organisation", required=True)
        imp.add_argument("--mode", default="partial", choices=["partial", "all_or_nothing"])

    def _read(self, name: str) -> str:
        path = Path(name)
        if not path.is_file():
            raise CommandError(f"{name}: no such file")
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise CommandError(f"{name}: not UTF-8 text") from None

    def _org(self, options) -> Organisation:
        org = Organisation.objects.filter(portal__slug=options["portal"], slug=options["organisation"]).first()
        if org is None:
            raise CommandError(f"no organisation {options['organisation']!r} on portal {options['portal']!r}")
        return org

    def handle(self, *args, **options):
        getattr(self, f"_{options['what']}_{options['action']}")(options)

    def _gates_load(self, options):
        try:
            org, counts = config.load(self._read(options["file"]), actor=Actor.cli(), now=timezone.now())
        except config.ConfigError as exc:
            raise CommandError(f"{options['file']}: " + "; ".join(exc.errors)) from None
        except services.RecoveryError as exc:
            raise CommandError(f"{options['file']}: {exc.field}: {exc.message}") from None
        self.stdout.write(f"{org.portal.slug}/{org.slug}: {counts['added']} added, {counts['updated']} updated, "
                          f"{counts['removed']} removed, {counts['unchanged']} unchanged")

    def _gates_show(self, options):
        orgs = Organisation.objects.select_related("portal").order_by("portal__slug", "position")
        if options.get("portal"):
            orgs = orgs.filter(portal__slug=options["portal"])
        now = timezone.now()
        for org in orgs:
            for row in selectors.gate_rows(org, now):
                g = row.gate
                self.stdout.write(
                    f"{org.portal.slug}/{org.slug}\t{g.function}\t{g.activity.slug if g.activity else '*'}\t"
                    f"{g.procedure.service.slug}/{g.procedure.slug}\t{g.when_degraded}\t{row.state.state}")

    def _paper_import(self, options):
        org = self._org(options)
        report = services.paper_bookings_import(organisation=org, text=self._read(options["file"]),
                                                actor=Actor.cli(), now=timezone.now(), mode=options["mode"])
        if report.errors:
            lines = "\n".join(f"  line {n}{f' ({c})' if c else ''}: {m}" for n, c, m in report.errors)
            raise CommandError(f"{options['file']}: nothing entered:\n{lines}")
        self.stdout.write(f"{report.forms} forms: {report.created} entered, {report.already} already entered; "
                          f"days booked {report.booked}, waitlisted {report.waitlisted}, refused {report.refused}")

    def _paper_numbering(self, options):
        org = self._org(options)
        report = selectors.numbering(org)
        if not report:
            self.stdout.write("no paper form entered")
        for s in report:
            gaps = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in s.gaps) or "none"
            dups = ", ".join(f"{n} (x{c})" for n, c in s.duplicates) or "none"
            self.stdout.write(f"{s.kind} {s.series}: {s.first}-{s.last}, {s.entered} entered, "
                              f"gaps: {gaps}, duplicates: {dups}" + (f", void: {s.void}" if s.void else ""))
        for e in selectors.entered_out_of_order(org):
            self.stdout.write(f"entered late: {e.form.label} (after {e.overtaken_by} form(s) handed in later)")
        if any(s.gaps or s.duplicates for s in report):
            self.stdout.write(self.style.WARNING("numbering has gaps or duplicates"))
