"""The WSGI application (gunicorn ``guichet.wsgi:application``).

The application server runs no system checks, so the one check a page cannot do without is made
here, at start-up: without a readable field key the first page that shows an IBAN or a quotient
would be a server error. The process stops instead, saying what is missing and how to fix it.
"""

import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guichet.settings")
application = get_wsgi_application()


def _require_field_key() -> None:
    from guichet.common import crypto

    try:
        crypto.keyring()
    except crypto.FieldKeyError as e:
        sys.stderr.write(f"guichet: cannot start: {e}.\n{crypto.MISSING_KEY_HINT}\n")
        raise SystemExit(3) from None


_require_field_key()
