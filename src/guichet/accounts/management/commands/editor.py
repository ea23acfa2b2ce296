import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from guichet.accounts.models import EditorRole
from guichet.accounts.services import AccountError, editor_add, editor_remove
from guichet.common.actor import Actor


def _read_password(path: str) -> str:
    if path == "-":
        text = sys.stdin.read()
    else:
        p = Path(path)
        if not p.is_file():
            raise CommandError(f"--password-file: no file at {path}")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"--password-file: cannot read {path} ({e.__class__.__name__})") from None
    password = text.rstrip("\r\n")
    if not password:
        raise CommandError(f"--password-file: {path} is empty")
    return password


class Command(BaseCommand):
    help = (
        "Editors of the status board. 'guichet editor add --portal SLUG --email ADDRESS "
        "[--organisation SLUG] [--service SLUG] [--password-file FILE]' creates (or finds) the staff "
        "account and grants the role; 'list' and 'remove' show and withdraw roles."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{add,list,remove}")
        for name, text in (("add", "create or find the account and grant an editor role"),
                           ("remove", "withdraw an editor role")):
            p = sub.add_parser(name, help=text)
            p.add_argument("--portal", required=True, help="the page's identifier (slug), e.g. saint-nazaire")
            p.add_argument("--email", required=True, help="the editor's e-mail address (also their login)")
            p.add_argument("--organisation", help="limit the role to one organisation of the page")
            p.add_argument("--service", help="limit the role to one service (e.g. service managers)")
            if name == "add":
                p.add_argument("--password-file", help="read the password from this file ('-' for standard "
                               "input); without it a new account gets a random password, printed once")
        p = sub.add_parser("list", help="list editor roles")
        p.add_argument("--portal", help="only this page")

    def handle(self, *args, action, **opts):
        try:
            if action == "add":
                return self._add(opts)
            if action == "remove":
                n = editor_remove(email=opts["email"], portal_slug=opts["portal"],
                                  organisation_slug=opts.get("organisation"), service_slug=opts.get("service"),
                                  actor=Actor.cli())
                self.stdout.write("role removed" if n else "no such role: nothing changed")
                return None
            return self._list(opts)
        except AccountError as e:
            raise CommandError(f"--{e.field.replace('_', '-')}: {e.message}") from None

    def _add(self, opts):
        password = _read_password(opts["password_file"]) if opts.get("password_file") else None
        result = editor_add(email=opts["email"], portal_slug=opts["portal"],
                            organisation_slug=opts.get("organisation"), service_slug=opts.get("service"),
                            password=password, actor=Actor.cli())
        role = result.role
        scope = (f"service '{role.service.slug}'" if role.service else
                 f"organisation '{role.organisation.slug}'" if role.organisation else "the whole page")
        who = result.user.get_username()
        self.stdout.write(f"{'created' if result.user_created else 'found'} account {who}")
        self.stdout.write(f"{'granted' if result.role_created else 'already had'} editor role on "
                          f"'{role.portal.slug}' for {scope}")
        if result.generated_password:
            self.stdout.write(f"password (shown once, give it to the editor): {result.generated_password}")
        elif password is not None:
            self.stdout.write("password set from file")

    def _list(self, opts):
        roles = EditorRole.objects.select_related("user", "portal", "organisation", "service").order_by(
            "portal__slug", "user__username")
        if opts.get("portal"):
            roles = roles.filter(portal__slug=opts["portal"])
        for r in roles:
            scope = r.service.slug if r.service else (r.organisation.slug if r.organisation else "*")
            self.stdout.write(f"{r.portal.slug}\t{r.user.get_username()}\t{scope}")



