"""``guichet bookings``: configuration files and waiting-list housekeeping.

    guichet bookings check FILE...      check activity configuration files, write nothing
    guichet bookings load FILE...       load them (create or update; twice changes nothing)
    guichet bookings expire-offers      expire waiting-list offers not accepted in time
    guichet bookings drainer            answer the queue of received baskets (PostgreSQL; a
                                        service beside the web server, docs/operations.md)
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guichet.bookings.config import ConfigError, load_config
from guichet.bookings.services import waitlist_expire_offers
from guichet.common.actor import Actor


class Command(BaseCommand):
    help = "Check or load activity configuration files; expire waiting-list offers."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (("check", "Check files against the format and the database; write nothing."),
                           ("load", "Load files (create or update).")):
            p = sub.add_parser(name, help=text)
            p.add_argument("files", nargs="+", metavar="FILE")
        sub.add_parser("expire-offers", help="Expire the offers not accepted in time.")
        sub.add_parser("drainer", help="Answer the queue of received baskets, for every server process "
                                       "(PostgreSQL; runs until stopped).")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "drainer":
            from django.db import connection

            from guichet.bookings import intake

            if connection.vendor != "postgresql":
                raise CommandError("the drainer needs PostgreSQL: on SQLite each server process answers "
                                   "its own baskets, nothing to run", returncode=2)
            self.stdout.write("basket drainer: answering the queue (stop with Ctrl-C or SIGTERM)")
            self.stdout.flush()
            try:
                intake.run_drainer()
            except KeyboardInterrupt:
                self.stdout.write("basket drainer: stopped")
            return
        if action == "expire-offers":
            done = waitlist_expire_offers(now=timezone.now(), actor=Actor.system("bookings.expire"))
            self.stdout.write(f"{done.expired} offer(s) expired, {done.paused} paused (online booking suspended), "
                              f"{done.resumed} resumed (online booking reopened)")
            return
        failed = False
        for name in options["files"]:
            path = Path(name)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                self.stderr.write(f"{name}: cannot read the file ({e.__class__.__name__})")
                failed = True
                continue
            try:
                report = load_config(text, path.name, actor=Actor.cli(), now=timezone.now(),
                                     dry_run=action == "check")
            except ConfigError as e:
                self.stderr.write(str(e))
                failed = True
                continue
            verb = "is valid" if action == "check" else "loaded"
            self.stdout.write(f"{path.name} {verb}: {report}")
        if failed:
            raise CommandError("some files have errors (nothing was written from them)", returncode=2)
