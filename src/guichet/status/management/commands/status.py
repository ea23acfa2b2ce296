"""``guichet status import|dump|check|export``: notice files and the static export."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guichet.catalog.models import Portal
from guichet.common.actor import Actor
from guichet.status.notice import (
    UNATTACHED_CONTACT,
    NoticeError,
    dump_notice,
    import_notice,
    parse_notice,
)
from guichet.status.selectors import contacts_shown_nowhere


def _read(path: str) -> str:
    p = Path(path)
    if not p.exists():
        raise CommandError(f"{path}: no such file", returncode=2)
    if p.is_dir():
        raise CommandError(f"{path}: is a directory, not a notice file", returncode=2)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not a UTF-8 text file", returncode=2) from None
    except OSError as e:
        raise CommandError(f"{path}: cannot be read ({e.strerror})", returncode=2) from None


def _portal(slug: str) -> Portal:
    portal = Portal.objects.filter(slug=slug).first()
    if portal is None:
        known = ", ".join(Portal.objects.order_by("slug").values_list("slug", flat=True)) or "none"
        raise CommandError(f"--portal: no portal '{slug}' (known: {known})", returncode=2)
    return portal


def _summary(operations: list[dict]) -> str:
    count = {name: 0 for name in ("service.set", "procedure.set", "availability.set", "advisory.set")}
    for op in operations:
        if op["op"] in count:
            count[op["op"]] += 1
    return (f"{count['service.set']} services, {count['procedure.set']} procedures, "
            f"{count['availability.set']} availability rows, {count['advisory.set']} advisories")


def _report(e: NoticeError) -> CommandError:
    sys.stderr.write("\n".join(str(p) for p in e.errors) + "\n")
    n = len(e.errors)
    return CommandError(f"{n} problem{'s' if n > 1 else ''} found; nothing was changed", returncode=2)


class Command(BaseCommand):
    help = (
        "Notice files and the static site: 'import FILE...' publishes notices, 'check FILE...' only "
        "validates them, 'dump --portal SLUG' writes a page back as a notice, 'export DIR' writes the "
        "self-contained static site."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="import|check|dump|export")
        p = sub.add_parser("import", help="validate and publish notice files (all or nothing, per file)")
        p.add_argument("files", nargs="+", metavar="FILE")
        p = sub.add_parser("check", help="validate notice files without changing anything")
        p.add_argument("files", nargs="+", metavar="FILE")
        p = sub.add_parser("dump", help="write a page's published state as a notice file")
        p.add_argument("--portal", required=True, metavar="SLUG")
        p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of the standard output")
        p = sub.add_parser("export", help="write the static site (HTML, CSS, Atom, JSON) into DIR")
        p.add_argument("directory", metavar="DIR")
        p.add_argument("--portal", metavar="SLUG", help="only this page (written into DIR/SLUG)")

    def handle(self, *args, action, **options):
        return getattr(self, f"do_{action}")(**options)

    def do_check(self, files, **options):
        failed = 0
        for path in files:
            try:
                notice = parse_notice(_read(path), Path(path).name)
            except NoticeError as e:
                sys.stderr.write("\n".join(str(p) for p in e.errors) + "\n")
                failed += len(e.errors)
                continue
            self.stdout.write(f"{path}: OK, page '{notice.portal}': {_summary(notice.operations)}")
            for warning in notice.warnings():
                self.stderr.write(f"warning: {warning}")
        if failed:
            raise CommandError(f"{failed} problem{'s' if failed > 1 else ''} found", returncode=2)

    def do_import(self, files, **options):
        texts = [(path, _read(path)) for path in files]  # every file readable before anything changes
        for path, text in texts:
            try:
                cs = import_notice(text, Path(path).name, actor=Actor.cli())
            except NoticeError as e:
                raise _report(e) from None
            self.stdout.write(self.style.SUCCESS(
                f"{path}: published on page '{cs.portal.slug}': {_summary(cs.operations)}"
            ))
            for contact in contacts_shown_nowhere(cs.portal):
                self.stderr.write(f"warning: page '{cs.portal.slug}': " + UNATTACHED_CONTACT % contact.key)

    def do_dump(self, portal, output=None, **options):
        text = dump_notice(_portal(portal))
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise CommandError(f"{output}: cannot be written ({e.strerror})", returncode=2) from None
        self.stdout.write(f"page '{portal}' written to {output}")

    def do_export(self, directory, portal=None, **options):
        try:
            from guichet.status import export
        except ImportError:
            raise CommandError("the static export is not available in this version", returncode=2) from None
        target = Path(directory)
        if target.exists() and not target.is_dir():
            raise CommandError(f"{directory}: exists and is not a directory", returncode=2)
        now: dt.datetime = timezone.now()
        try:
            if portal:
                p = _portal(portal)
                export.export_site(portal=p, directory=target / p.slug, now=now)
                self.stdout.write(f"page '{p.slug}' exported to {target / p.slug}")
            else:
                export.export_all(directory=target, now=now)
                self.stdout.write(f"every page exported to {target}")
        except OSError as e:
            raise CommandError(f"{directory}: cannot be written ({e.strerror})", returncode=2) from None
