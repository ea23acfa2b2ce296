import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guichet.accounts.access import access_purge, household_accesses
from guichet.accounts.models import RecordAccess
from guichet.accounts.services import AccountError, find_user


class Command(BaseCommand):
    help = (
        "Who opened which family's record. 'guichet access list --portal P --household REF [--days N]' "
        "lists the openings of one household's record; 'list --email X' those of one staff member; "
        "'purge' deletes the rows past their retention (two years)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{list,purge}")
        p = sub.add_parser("list", help="list accesses")
        p.add_argument("--portal", help="the town's page (slug), with --household")
        p.add_argument("--household", help="the family file's reference")
        p.add_argument("--email", help="a staff member's accesses")
        p.add_argument("--days", type=int, default=90, help="how far back (default 90 days)")
        sub.add_parser("purge", help="delete rows past their retention")

    def handle(self, *args, action, **opts):
        if action == "purge":
            self.stdout.write(f"{access_purge()} access record(s) deleted")
            return
        if opts["days"] < 1:
            raise CommandError("--days: give a number of days, 1 or more")
        since = timezone.now() - dt.timedelta(days=opts["days"])
        if opts.get("household"):
            if not opts.get("portal"):
                raise CommandError("--portal: give the town's page with --household")
            from guichet.bookings.models import Household

            hh = Household.objects.filter(organisation__portal__slug=opts["portal"],
                                          reference=opts["household"]).first()
            if hh is None:
                raise CommandError(f"--household: no family file '{opts['household']}' on page '{opts['portal']}'")
            rows = household_accesses(hh.pk, since=since)
        elif opts.get("email"):
            try:
                user = find_user(opts["email"])
            except AccountError as e:
                raise CommandError(f"--email: {e.message}") from None
            if user is None:
                raise CommandError("--email: no account with this e-mail address")
            rows = RecordAccess.objects.filter(user=user, at__gte=since)
        else:
            raise CommandError("give --portal and --household, or --email")
        n = 0
        for r in rows.select_related("user").order_by("at", "pk"):
            self.stdout.write(f"{timezone.localtime(r.at):%Y-%m-%d %H:%M}\t{r.user.get_username()}\t"
                              f"household #{r.household_id}\t{r.what}")
            n += 1
        if not n:
            self.stdout.write("no access recorded in this period")
