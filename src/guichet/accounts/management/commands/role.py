from django.core.management.base import BaseCommand, CommandError

from guichet.accounts.selectors import roles_of
from guichet.accounts.services import ROLE_KINDS, AccountError, find_user, role_add, role_remove
from guichet.common.actor import Actor

KINDS_HELP = (
    "finance (invoicing, payments, direct debits), it (backups, journal, degraded modes), admin (the "
    "organisation's administrator), counter (counter agents: deposits, requests), agent (booking agent: acts "
    "for families; --site limits it to one centre)"
)


class Command(BaseCommand):
    help = (
        "Staff roles per organisation. 'guichet role add --email ADDRESS --kind KIND --portal SLUG "
        "--organisation SLUG [--site SLUG]' grants a role (creating the staff account if needed); "
        "'remove' withdraws it; 'list' shows every role (editors and agents included). Kinds: " + KINDS_HELP
        + ". Status editors keep their own command, 'guichet editor'."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{add,remove,list}")
        for name, text in (("add", "grant a role in one organisation"), ("remove", "withdraw a role")):
            p = sub.add_parser(name, help=text)
            p.add_argument("--email", required=True, help="the staff member's e-mail address (their login)")
            p.add_argument("--kind", required=True, help=KINDS_HELP)
            p.add_argument("--portal", required=True, help="the town's page (slug), e.g. saint-nazaire")
            p.add_argument("--organisation", help="the organisation (slug) of that page, e.g. ville")
            p.add_argument("--site", help="booking agents only: limit the role to one centre (slug)")
        p = sub.add_parser("list", help="list roles")
        p.add_argument("--email", help="only this account's roles")
        p.add_argument("--portal", help="only roles on this page")
        p.add_argument("--kind", help="only this kind of role")

    def handle(self, *args, action, **opts):
        try:
            if action == "list":
                return self._list(opts)
            fn = role_add if action == "add" else role_remove
            result = fn(email=opts["email"], kind=opts["kind"], portal_slug=opts["portal"],
                        organisation_slug=opts.get("organisation"), site_slug=opts.get("site"), actor=Actor.cli())
        except AccountError as e:
            raise CommandError(f"--{e.field.replace('_', '-')}: {e.message}") from None
        who = result.user.get_username()
        where = f"{opts['portal']}/{result.organisation.slug}" + (f" (site {opts['site']})" if opts.get("site") else "")
        if action == "add":
            if result.user_created:
                self.stdout.write(f"created staff account {who}")
            self.stdout.write(f"{'granted' if result.changed else 'already had'} role {result.kind} on {where} to {who}")
            if result.generated_password:
                self.stdout.write(f"password (shown once, give it to the person): {result.generated_password}")
                self.stdout.write("at first sign-in they set up two-factor authentication (an authenticator app)")
        else:
            self.stdout.write(f"removed role {result.kind} on {where} from {who}" if result.changed
                              else f"{who} had no role {result.kind} on {where}: nothing changed")
        return None

    def _list(self, opts):
        from django.contrib.auth import get_user_model

        kind = opts.get("kind")
        if kind and kind not in ROLE_KINDS:
            raise CommandError(f"--kind: unknown role '{kind}' (known: {', '.join(ROLE_KINDS)})")
        if opts.get("email"):
            user = find_user(opts["email"])
            if user is None:
                raise CommandError("--email: no account with this e-mail address")
            users = [user]
        else:
            users = list(get_user_model().objects.order_by("username"))
        count = 0
        for user in users:
            for k, portal, scope in roles_of(user):
                if (kind and k != kind) or (opts.get("portal") and portal != opts["portal"]):
                    continue
                self.stdout.write(f"{user.get_username()}\t{k}\t{portal}\t{scope}")
                count += 1
        if not count:
            self.stdout.write("no role matches")
