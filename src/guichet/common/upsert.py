"""One upsert for every slug-keyed row: create or update, journal only what changed."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from guichet.common.actor import Actor
from guichet.journal.services import journal_append


def upsert_row(
    model: type[models.Model],
    *,
    actor: Actor,
    operation: str,
    keys: dict[str, Any],
    values: dict[str, Any],
    organisation_id: int | None,
    now=None,
) -> tuple[models.Model, bool]:
    """Create or update the row identified by ``keys``; journal the change if there is one.

    Returns ``(row, changed)``. Model validation runs before saving; database constraints are
    the backstop.
    """
    with transaction.atomic():
        obj = model.objects.select_for_update().filter(**keys).first()
        created = obj is None
        if created:
            obj = model(**keys, **values)
            changed = sorted(values)
        else:
            changed = sorted(k for k, v in values.items() if getattr(obj, k) != v)
            for k in changed:
                setattr(obj, k, values[k])
        if created or changed:
            obj.full_clean(validate_unique=False, validate_constraints=False)
            obj.save()
            journal_append(
                actor=actor,
                operation=operation,
                objects=[obj],
                payload={"keys": {k: str(v) for k, v in keys.items()},
                         "values": {k: str(values[k]) for k in changed}},
                details={"created": created, "fields": changed},
                organisation_id=organisation_id,
                now=now,
            )
        return obj, created or bool(changed)
