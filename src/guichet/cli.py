"""The ``guichet`` command: Django's management commands under one name.

``guichet status import FILE``, ``guichet journal verify``, ``guichet migrate``... are the
management commands of the project, run with the project's settings.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guichet.settings")
    from django.core.management import execute_from_command_line

    args = ["guichet", *(sys.argv[1:] if argv is None else argv)]
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
