"""The ``guichet`` command: Django's management commands under one name.

``guichet status import FILE``, ``guichet journal verify``, ``guichet migrate``... are the
management commands of the project, run with the project's settings.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guichet.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - reads the settings: a missing key is said plainly
    except ImproperlyConfigured as e:
        sys.stderr.write(
            f"guichet: the configuration is incomplete: {e}\n"
            "  (production: set it in the service's environment; a development machine: DEBUG=1 or "
            "GUICHET_INSECURE_DEV_KEY=1 — see .env.example and docs/operations.md)\n"
        )
        raise SystemExit(2) from None
    args = ["guichet", *(sys.argv[1:] if argv is None else argv)]
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
