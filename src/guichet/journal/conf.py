"""The journal's and the backups' settings, read when used (never at import time).

Each comes from Django's settings when the deployment sets it there, otherwise from the
environment variable of the same name (see docs/guide-backups.md and .env.example):

- ``GUICHET_JOURNAL_WITNESSES``: comma-separated e-mail addresses that receive checkpoints.
- ``GUICHET_JOURNAL_SIGNING_KEY_FILE``: an Ed25519 private key (PEM) that signs checkpoints.
- ``GUICHET_BACKUP_KEY_FILE``: the backup key file (``guichet backup keygen``).
- ``GUICHET_BACKUP_KEY``: the backup key itself (base64), when a file is not practical.
"""

from __future__ import annotations

import os

from django.conf import settings


def setting(name: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    if isinstance(value, list | tuple):
        return ",".join(value)
    return str(value).strip()


def witnesses() -> list[str]:
    return [a.strip() for a in setting("GUICHET_JOURNAL_WITNESSES").split(",") if a.strip()]
