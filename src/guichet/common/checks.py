"""System checks of the field key (``guichet check``; also run by ``migrate`` and ``runserver``).

A missing, malformed or wrong field key is said at start-up, with what to do, instead of
becoming a server error on the first page that reads an IBAN or a quotient.
"""

from __future__ import annotations

from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from . import crypto


def _sample(check) -> tuple[list[str], list[str]]:
    """(errors, values still in clear) of ``check()``, which reads some encrypted values."""
    try:
        check()
    except crypto.NotEncryptedError as e:
        return [], [str(e)]  # before the migration that encrypts them: migrate does it
    except crypto.FieldKeyError as e:
        return [str(e)], []
    except (DatabaseError, FileNotFoundError):
        pass  # no database yet, not migrated, a file missing: nothing encrypted to check here
    return [], []


def _first_and_last(model, attname: str, exclude: dict) -> list:
    rows = model._base_manager.exclude(**exclude)
    return [rows.order_by(o).values_list(attname, flat=True).first() for o in ("pk", "-pk")]


def _open_file(model, field) -> None:
    for name in _first_and_last(model, field.attname, {field.attname: ""}):
        if name:
            field.storage.open(name).close()


def _sample_problems() -> tuple[list[str], list[str]]:
    """Decrypt the first and the last value of every encrypted column, and the first and last
    file of every encrypted file field: data written under a key that is not configured (or
    altered) is found here, before a page needs it."""
    errors, clear = [], []
    for model, field in crypto.encrypted_fields():
        e, c = _sample(
            lambda m=model, f=field: _first_and_last(m, f.attname, {f"{f.attname}__isnull": True})
        )
        errors += e
    for model, field in crypto.encrypted_file_fields():
        e, c = _sample(lambda m=model, f=field: _open_file(m, f))
        errors += e
        clear += c
    return errors, clear


@register(Tags.security)
def field_key_check(app_configs=None, **kwargs):
    try:
        crypto.load_keyring()
    except crypto.FieldKeyError as e:
        return [
            Error(
                str(e),
                hint=crypto.MISSING_KEY_HINT,
                id="guichet.E101",
            )
        ]
    crypto.keyring.cache_clear()
    errors, clear = _sample_problems()
    return [
        Error(
            message,
            hint="Set GUICHET_FIELD_KEY_FILE to the key file this database was encrypted "
            "with (the old keys stay in the file, below the current one).",
            id="guichet.E102",
        )
        for message in errors
    ] + [
        Warning(message, hint="Run 'guichet fieldkey reencrypt' once.", id="guichet.W102")
        for message in clear
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
