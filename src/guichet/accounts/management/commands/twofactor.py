import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp

from guichet.accounts import twofactor
from guichet.accounts.services import AccountError, find_user
from guichet.common.actor import Actor

_HEX = re.compile(r"^[0-9a-f]{40}$")


def _read_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"--key-file: cannot read {path} ({e.__class__.__name__})") from None
    if not _HEX.match(key):
        raise CommandError(f"--key-file: {path} does not hold a key (40 hexadecimal characters)")
    return key


class Command(BaseCommand):
    # Runs on a half-configured machine: 'code' reads no account, and the others touch no
    # encrypted field (the field-key checks would refuse them in a copy of bin/demo's data
    # directory opened without its key).
    requires_system_checks = []
    help = (
        "Staff two-step sign-in. 'status --email X' says whether it is set up; 'reset --email X' removes the "
        "person's authenticator and recovery codes (lost phone): they set it up again at their next sign-in; "
        "'enrol --email X [--key-file F]' enrols an authenticator directly (in person, or for the demo) and "
        "prints its key and recovery codes once; 'code --key-file F' prints the current code of a key file "
        "(demo and tests only: it reads no account)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{status,reset,enrol,code}")
        for name, text in (("status", "is two-step sign-in set up?"), ("reset", "remove authenticator and codes")):
            sub.add_parser(name, help=text).add_argument("--email", required=True, help="the staff member's e-mail")
        p = sub.add_parser("enrol", help="enrol an authenticator directly and print its key once")
        p.add_argument("--email", required=True, help="the staff member's e-mail")
        p.add_argument("--key-file", help="use the key in this file (40 hex characters); when the file does not "
                       "exist, a new key is written there (mode 600)")
        p = sub.add_parser("code", help="the current six-digit code of a key file")
        p.add_argument("--key-file", required=True)

    def handle(self, *args, action, **opts):
        if action == "code":
            key = _read_key(Path(opts["key_file"]))
            self.stdout.write(f"{totp(bytes.fromhex(key)):06d}")
            return
        try:
            user = find_user(opts["email"])
        except AccountError as e:
            raise CommandError(f"--{e.field}: {e.message}") from None
        if user is None:
            raise CommandError("--email: no account with this e-mail address")
        who = user.get_username()
        if action == "status":
            if twofactor.has_second_factor(user):
                self.stdout.write(f"{who}: set up; {twofactor.recovery_codes_left(user)} recovery codes left")
            else:
                self.stdout.write(f"{who}: not set up (asked at the next sign-in)")
        elif action == "reset":
            n = twofactor.two_factor_reset(user=user, actor=Actor.cli())
            self.stdout.write(f"{who}: {n} device(s) removed; they set up a new authenticator at their next sign-in")
        else:
            self._enrol(user, opts.get("key_file"))

    def _enrol(self, user, key_file):
        key = None
        path = Path(key_file) if key_file else None
        if path is not None and path.exists():
            key = _read_key(path)
        device, codes = twofactor.enrol_directly(user=user, key_hex=key, actor=Actor.cli())
        if path is not None and key is None:
            path.touch(mode=0o600)
            path.write_text(device.key + "\n", encoding="ascii")
        self.stdout.write(f"two-step sign-in enrolled for {user.get_username()}")
        self.stdout.write(f"key to type in an authenticator app (time-based, 6 digits): {twofactor.secret_base32(device)}")
        self.stdout.write(f"or scan: {device.config_url}")
        self.stdout.write("recovery codes (shown once): " + " ".join(codes))
