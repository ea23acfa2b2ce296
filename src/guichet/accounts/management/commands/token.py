from django.core.management.base import BaseCommand, CommandError

from guichet.accounts.models import ApiToken
from guichet.accounts.services import AccountError, find_user, token_create, token_revoke
from guichet.common.actor import Actor


class Command(BaseCommand):
    help = (
        "API bearer tokens for the write API. 'guichet token create --email ADDRESS --name NAME' prints "
        "a new token once (only its digest is stored); 'list' and 'revoke --id N' manage them."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        p = sub.add_parser("create", help="create a token for an existing account")
        p.add_argument("--email", required=True, help="the account's e-mail address")
        p.add_argument("--name", required=True, help="what the token is for, e.g. 'import-script'")
        p = sub.add_parser("list", help="list tokens (never their value)")
        p.add_argument("--email", help="only this account's tokens")
        p = sub.add_parser("revoke", help="revoke a token")
        p.add_argument("--id", required=True, type=int, help="the token's number, from 'guichet token list'")

    def handle(self, *args, action, **opts):
        try:
            if action == "create":
                token, raw = token_create(email=opts["email"], name=opts["name"], actor=Actor.cli())
                self.stdout.write(f"token #{token.pk} '{token.name}' for {token.user.get_username()}")
                self.stdout.write("shown once, store it safely; send it as 'Authorization: Bearer <token>':")
                self.stdout.write(raw)
            elif action == "revoke":
                token = token_revoke(token_id=opts["id"], actor=Actor.cli())
                self.stdout.write(f"token #{token.pk} '{token.name}' revoked")
            else:
                tokens = ApiToken.objects.select_related("user").order_by("pk")
                if opts.get("email"):
                    user = find_user(opts["email"])
                    tokens = tokens.filter(user=user) if user else tokens.none()
                for t in tokens:
                    state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
                    self.stdout.write(f"#{t.pk}\t{t.name}\t{t.user.get_username()}\t{state}")
        except AccountError as e:
            raise CommandError(f"--{e.field}: {e.message}") from None
