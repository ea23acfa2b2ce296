"""System checks of the field key (``guichet check``; also run by ``migrate`` and ``runserver``).

A missing, malformed or wrong field key is said at start-up, with what to do, instead of
becoming a server error on the first page that reads an IBAN or a quotient.
"""

from __future__ import annotations

from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from . import crypto


def _sample_errors() -> list[str]:
    """Decrypt the first and the last value of every encrypted column and file field: data
    written under a key that is not configured (or with another key) is found here."""
    problems = []
    for model, field in crypto.encrypted_fields():
        manager = model._base_manager.exclude(**{f"{field.attname}__isnull": True})
        try:
            for order in ("pk", "-pk"):
                manager.order_by(order).values_list(field.attname, flat=True).first()
        except crypto.FieldKeyError as e:
            problems.append(str(e))
        except DatabaseError:
            return []  # no database yet, or not migrated: nothing encrypted to check
    for model, field in crypto.encrypted_file_fields():
        try:
            for order in ("pk", "-pk"):
                row = model._base_manager.exclude(**{field.attname: ""}).order_by(order).first()
                if row is not None:
                    with getattr(row, field.attname).open("rb"):
                        pass
        except crypto.FieldKeyError as e:
            problems.append(str(e))
        except (DatabaseError, FileNotFoundError):
            continue
    return problems


@register(Tags.security)
def field_key_check(app_configs=None, **kwargs):
    try:
        crypto.load_keyring()
    except crypto.FieldKeyError as e:
        return [
            Error(
                str(e),
                hint="Create a key with 'guichet fieldkey generate FILE' (mode 600, kept "
                "offline too) and set GUICHET_FIELD_KEY_FILE to it.",
                id="guichet.E101",
            )
        ]
    crypto.keyring.cache_clear()
    return [
        Error(
            message,
            hint="Set GUICHET_FIELD_KEY_FILE to the key file this database was encrypted "
            "with (the old keys stay in the file, below the current one).",
            id="guichet.E102",
        )
        for message in _sample_errors()
    ]


@register(Tags.security, deploy=True)
def field_key_deploy_check(app_configs=None, **kwargs):
    try:
        ring = crypto.load_keyring()
    except crypto.FieldKeyError:
        return []  # said by field_key_check
    if ring.insecure:
        return [
            Warning(
                "the fields encrypted at rest use the public insecure development key",
                hint="Set GUICHET_FIELD_KEY_FILE to a key made by 'guichet fieldkey generate FILE', "
                "then run 'guichet fieldkey reencrypt'.",
                id="guichet.W101",
            )
        ]
    return []
