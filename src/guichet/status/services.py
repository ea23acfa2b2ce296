"""Publishing to the status board.

Editors never write rows directly: they prepare a *changeset* (a list of operations, see
``operations``), which is published in one transaction, after a second editor's approval when
the portal requires it. Importing a notice file is the same path with the command line as actor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from guichet.accounts.selectors import can_edit
from guichet.catalog import services as catalog
from guichet.catalog.models import ContactPoint, Organisation, Portal, Procedure, Service
from guichet.common.actor import Actor
from guichet.common.upsert import upsert_row
from guichet.journal.services import journal_append

from .models import (
    ANY_CHANNEL,
    Advisory,
    AffectedService,
    Availability,
    ChangeSet,
    Incident,
    IncidentUpdate,
    RestorationTarget,
)
from .operations import OperationsInvalid, OpError, validate_operations


class StatusError(Exception):
    """A change that cannot be made; ``message`` is safe to show to the editor."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


class PermissionDenied(StatusError):
    pass


# --- Resolving references inside one portal -------------------------------------------------


class _Refs:
    """Looks up slugs within one portal; sees rows created earlier in the same changeset."""

    def __init__(self, portal: Portal, as_of: dt.datetime | None = None):
        self.portal = portal
        # When the information was given: what the public pages show as "updated on". It is the
        # time of the change, except for an imported notice, which carries its own date.
        self.as_of = as_of

    def organisation(self, slug: str, path: str) -> Organisation:
        org = Organisation.objects.filter(portal=self.portal, slug=slug).first()
        if org is None:
            raise StatusError(f"no organisation '{slug}' on this page", path)
        return org

    def service(self, slug: str, path: str) -> Service:
        found = list(Service.objects.filter(organisation__portal=self.portal, slug=slug).select_related("organisation"))
        if not found:
            raise StatusError(f"no service '{slug}' on this page", path)
        if len(found) > 1:
            raise StatusError(f"service '{slug}' is ambiguous on this page", path)
        return found[0]

    def procedure(self, service: Service, slug: str, path: str) -> Procedure:
        proc = Procedure.objects.filter(service=service, slug=slug).first()
        if proc is None:
            raise StatusError(f"no procedure '{slug}' in service '{service.slug}'", path)
        return proc

    def incident(self, slug: str, path: str) -> Incident:
        found = list(Incident.objects.filter(organisation__portal=self.portal, slug=slug))
        if not found:
            raise StatusError(f"no incident '{slug}' on this page", path)
        return found[0]

    def contact(self, key: str, path: str) -> ContactPoint:
        found = list(ContactPoint.objects.filter(organisation__portal=self.portal, key=key))
        if not found:
            raise StatusError(f"no contact '{key}' on this page", path)
        if len(found) > 1:
            raise StatusError(f"contact '{key}' is ambiguous on this page", path)
        return found[0]


def _dt(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _d(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _texts(op: dict, *fields: str) -> dict[str, str]:
    out = {}
    for f in fields:
        out[f] = op.get(f, "") or ""
        out[f"{f}_en"] = op.get(f"{f}_en", "") or ""
    return out


def _touch(incident: Incident, now: dt.datetime) -> None:
    Incident.objects.filter(pk=incident.pk).update(updated_at=now)


# --- One function per operation ---------------------------------------------------------------


def _op_portal_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    values = {"name": op["name"], **_texts(op, "not_listed_statement")}
    values["name_en"] = op.get("name_en", "")
    if "requires_approval" in op:
        values["requires_approval"] = op["requires_approval"]
    if op.get("last_checked_at"):
        values["last_checked_at"] = _dt(op["last_checked_at"])
    refs.portal = catalog.portal_upsert(actor=actor, slug=refs.portal.slug, **values)
    return refs.portal


def _op_organisation_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    extra = {"requires_approval": op["requires_approval"]} if "requires_approval" in op else {}
    return catalog.organisation_upsert(
        actor=actor, portal=refs.portal, slug=op["slug"], name=op["name"], name_en=op.get("name_en", ""),
        kind=op.get("kind", Organisation.Kind.CITY), position=op.get("position", 0), **extra,
    )


def _op_service_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    org = refs.organisation(op["organisation"], f"{path}.organisation")
    clash = Service.objects.filter(organisation__portal=refs.portal, slug=op["slug"]).exclude(organisation=org)
    if clash.exists():
        raise StatusError(f"service '{op['slug']}' already belongs to another organisation of this page", f"{path}.slug")
    return catalog.service_upsert(
        actor=actor, organisation=org, slug=op["slug"], name=op["name"],
        position=op.get("position", 0), **_texts(op, "description"), name_en=op.get("name_en", ""),
    )


def _op_procedure_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    service = refs.service(op["service"], f"{path}.service")
    return catalog.procedure_upsert(
        actor=actor, service=service, slug=op["slug"], name=op["name"], name_en=op.get("name_en", ""),
        position=op.get("position", 0),
    )


def _op_contact_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    org = refs.organisation(op["organisation"], f"{path}.organisation")
    clash = ContactPoint.objects.filter(organisation__portal=refs.portal, key=op["key"]).exclude(organisation=org)
    if clash.exists():
        raise StatusError(f"contact '{op['key']}' already belongs to another organisation of this page", f"{path}.key")
    service = refs.service(op["service"], f"{path}.service") if op.get("service") else None
    return catalog.contact_upsert(
        actor=actor, organisation=org, key=op["key"], service=service, label=op["label"],
        label_en=op.get("label_en", ""), kind=op["kind"], value=op["value"], **_texts(op, "note"),
        hours=op.get("hours"), temporary=op.get("temporary", False), valid_until=_d(op.get("valid_until")),
        position=op.get("position", 0),
    )


def _op_incident_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    org = refs.organisation(op["organisation"], f"{path}.organisation")
    clash = Incident.objects.filter(organisation__portal=refs.portal, slug=op["slug"]).exclude(organisation=org)
    if clash.exists():
        raise StatusError(f"incident '{op['slug']}' already belongs to another organisation", f"{path}.slug")
    values = {
        **_texts(op, "title", "summary"), "nature": op.get("nature", Incident.Nature.OTHER),
        "started_at": _dt(op["started_at"]), "ended_at": _dt(op.get("ended_at")),
    }
    existing = Incident.objects.filter(organisation=org, slug=op["slug"]).first()
    if existing is None:
        values["updated_at"] = refs.as_of or now
    incident, changed = upsert_row(
        Incident, actor=actor, operation="status.incident.set", keys={"organisation": org, "slug": op["slug"]},
        values=values, organisation_id=org.pk, now=now,
    )
    if changed:
        _touch(incident, refs.as_of or now)
    return incident


def _op_incident_close(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    incident = refs.incident(op["incident"], f"{path}.incident")
    ended = _dt(op["ended_at"])
    if ended < incident.started_at:
        raise StatusError("ends before the incident started", f"{path}.ended_at")
    incident, changed = upsert_row(
        Incident, actor=actor, operation="status.incident.close", keys={"pk": incident.pk},
        values={"ended_at": ended}, organisation_id=incident.organisation_id, now=now,
    )
    if changed:
        _touch(incident, refs.as_of or now)
    return incident


def _op_update_post(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    incident = refs.incident(op["incident"], f"{path}.incident")
    row, changed = upsert_row(
        IncidentUpdate, actor=actor, operation="status.update.post",
        keys={"incident": incident, "key": op["key"]},
        values={"organisation": incident.organisation, "published_at": _dt(op["published_at"]), **_texts(op, "body")},
        organisation_id=incident.organisation_id, now=now,
    )
    if changed:
        _touch(incident, refs.as_of or now)
    return row


def _affected(refs: _Refs, incident: Incident, service: Service, actor: Actor, now, values: dict | None = None):
    keys = {"incident": incident, "service": service}
    existing = AffectedService.objects.filter(**keys).first()
    if existing is not None and values is None:
        return existing, False
    base = {"organisation": service.organisation, "updated_at": existing.updated_at if existing else refs.as_of or now}
    if values is None:
        values = {"position": AffectedService.objects.filter(incident=incident).count()}
    row, changed = upsert_row(
        AffectedService, actor=actor, operation="status.affected.set", keys=keys,
        values={**base, **values}, organisation_id=service.organisation_id, now=now,
    )
    if changed:
        AffectedService.objects.filter(pk=row.pk).update(updated_at=refs.as_of or now)
    return row, changed


def _op_affected_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    incident = refs.incident(op["incident"], f"{path}.incident")
    service = refs.service(op["service"], f"{path}.service")
    values = {**_texts(op, "headline", "details")}
    if "position" in op:
        values["position"] = op["position"]
    row, changed = _affected(refs, incident, service, actor, now, values)
    if changed:
        _touch(incident, refs.as_of or now)
    return row


def _op_affected_remove(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    incident = refs.incident(op["incident"], f"{path}.incident")
    service = refs.service(op["service"], f"{path}.service")
    rows = Availability.objects.filter(incident=incident, procedure__service=service)
    n = rows.count()
    rows.delete()
    deleted, _ = AffectedService.objects.filter(incident=incident, service=service).delete()
    if n or deleted:
        journal_append(actor=actor, operation="status.affected.remove", objects=[incident, service],
                       payload=op, details={"availabilities_removed": n}, organisation_id=service.organisation_id, now=now)
        _touch(incident, refs.as_of or now)
    return None


def _op_availability_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    incident = refs.incident(op["incident"], f"{path}.incident")
    service = refs.service(op["service"], f"{path}.service")
    procedure = refs.procedure(service, op["procedure"], f"{path}.procedure")
    contacts = [refs.contact(k, f"{path}.contacts[{i}]") for i, k in enumerate(op.get("contacts", []))]
    _affected(refs, incident, service, actor, now)
    keys = {"incident": incident, "procedure": procedure, "channel": op.get("channel", ANY_CHANNEL)}
    existing = Availability.objects.filter(**keys).first()
    values = {
        "organisation": procedure.organisation, "state": op["state"],
        **_texts(op, "channel_label", "explanation", "instead"),
        "since": _d(op.get("since")), "position": op.get("position", 0),
        "updated_at": existing.updated_at if existing else refs.as_of or now,
    }
    row, changed = upsert_row(
        Availability, actor=actor, operation="status.availability.set", keys=keys, values=values,
        organisation_id=procedure.organisation_id, now=now,
    )
    before = set(row.contacts.values_list("pk", flat=True))
    after = {c.pk for c in contacts}
    if before != after:
        row.contacts.set(contacts)
        changed = True
        journal_append(actor=actor, operation="status.availability.contacts", objects=[row],
                       payload=sorted(after), organisation_id=procedure.organisation_id, now=now)
    if changed:
        Availability.objects.filter(pk=row.pk).update(updated_at=refs.as_of or now)
        AffectedService.objects.filter(incident=incident, service=service).update(updated_at=refs.as_of or now)
        _touch(incident, refs.as_of or now)
    return row


def _op_availability_remove(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    incident = refs.incident(op["incident"], f"{path}.incident")
    service = refs.service(op["service"], f"{path}.service")
    procedure = refs.procedure(service, op["procedure"], f"{path}.procedure")
    deleted, _ = Availability.objects.filter(
        incident=incident, procedure=procedure, channel=op.get("channel", ANY_CHANNEL)
    ).delete()
    if deleted:
        journal_append(actor=actor, operation="status.availability.remove", objects=[incident, procedure],
                       payload=op, organisation_id=procedure.organisation_id, now=now)
        AffectedService.objects.filter(incident=incident, service=service).update(updated_at=refs.as_of or now)
        _touch(incident, refs.as_of or now)
    return None


def _op_target_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    incident = refs.incident(op["incident"], f"{path}.incident")
    service = refs.service(op["service"], f"{path}.service")
    procedure = refs.procedure(service, op["procedure"], f"{path}.procedure") if op.get("procedure") else None
    _affected(refs, incident, service, actor, now)
    values = {
        "precision": op["precision"], "earliest": _d(op.get("earliest")), "latest": _d(op.get("latest")),
        **_texts(op, "text"),
    }
    current = (
        RestorationTarget.objects.filter(incident=incident, service=service, procedure=procedure)
        .order_by("-recorded_at", "-pk").first()
    )
    if current is not None and all(getattr(current, k) == v for k, v in values.items()):
        return current
    row = RestorationTarget(organisation=service.organisation, incident=incident, service=service,
                            procedure=procedure, recorded_at=refs.as_of or now, **values)
    row.full_clean(validate_constraints=False)
    row.save()
    journal_append(actor=actor, operation="status.target.set", objects=[row], payload=op,
                   details={"revision": current is not None}, organisation_id=service.organisation_id, now=now)
    AffectedService.objects.filter(incident=incident, service=service).update(updated_at=refs.as_of or now)
    _touch(incident, refs.as_of or now)
    return row


def _op_advisory_set(refs: _Refs, op: dict, actor: Actor, now, path: str) -> Any:
    org = refs.organisation(op["organisation"], f"{path}.organisation")
    incident = refs.incident(op["incident"], f"{path}.incident") if op.get("incident") else None
    values = {
        "incident": incident, "kind": op["kind"], "audience": op.get("audience", Advisory.Audience.EVERYONE),
        **_texts(op, "title", "body"), "published_at": _dt(op["published_at"]),
        "expires_at": _dt(op.get("expires_at")),
    }
    if values["expires_at"] and values["expires_at"] < values["published_at"]:
        raise StatusError("expires before it is published", f"{path}.expires_at")
    row, _changed = upsert_row(Advisory, actor=actor, operation="status.advisory.set",
                               keys={"organisation": org, "key": op["key"]}, values=values,
                               organisation_id=org.pk, now=now)
    return row


HANDLERS: dict[str, Callable[..., Any]] = {
    "portal.set": _op_portal_set,
    "organisation.set": _op_organisation_set,
    "service.set": _op_service_set,
    "procedure.set": _op_procedure_set,
    "contact.set": _op_contact_set,
    "incident.set": _op_incident_set,
    "incident.close": _op_incident_close,
    "update.post": _op_update_post,
    "affected.set": _op_affected_set,
    "affected.remove": _op_affected_remove,
    "availability.set": _op_availability_set,
    "availability.remove": _op_availability_remove,
    "target.set": _op_target_set,
    "advisory.set": _op_advisory_set,
}


def apply_operations(
    *, portal: Portal, operations: list[dict], actor: Actor, now: dt.datetime, as_of: dt.datetime | None = None
) -> Portal:
    """Validate and apply operations in one transaction: all of them, or none (``OperationsInvalid``).

    ``as_of`` is when the information was given (an imported notice's own date), stamped on what
    changes as "updated on"; by default, ``now``. The journal and "last checked" keep ``now``.
    """
    cleaned, errors = validate_operations(operations)
    if errors:
        raise OperationsInvalid(errors)
    refs = _Refs(portal, as_of=min(as_of, now) if as_of else None)
    try:
        with transaction.atomic():
            for i, op in enumerate(cleaned):
                path = f"operations[{i}]"
                try:
                    HANDLERS[op["op"]](refs, op, actor, now, path)
                except StatusError as e:
                    raise OperationsInvalid([OpError(e.path or path, e.message)]) from None
            Portal.objects.filter(pk=refs.portal.pk).update(last_checked_at=now)
            refs.portal.last_checked_at = now
    except IntegrityError as e:  # the database's constraints are the backstop
        raise OperationsInvalid([OpError("operations", f"conflicts with existing data ({e.__class__.__name__})")]) from None
    return refs.portal


# --- Permissions -----------------------------------------------------------------------------


def _scope_of(portal: Portal, op: dict) -> tuple[Organisation | None, Service | None]:
    """Which organisation or service an operation touches (None, None for portal-wide ones)."""
    if op.get("service") and op["op"] not in ("service.set",):
        service = Service.objects.filter(organisation__portal=portal, slug=op["service"]).select_related("organisation").first()
        if service is not None:
            return service.organisation, service
    if op["op"] == "service.set":
        existing = Service.objects.filter(organisation__portal=portal, slug=op.get("slug")).first()
        if existing is not None:
            return existing.organisation, existing
    if op.get("organisation"):
        return Organisation.objects.filter(portal=portal, slug=op["organisation"]).first(), None
    if op.get("incident"):
        incident = Incident.objects.filter(organisation__portal=portal, slug=op["incident"]).select_related("organisation").first()
        if incident is not None:
            return incident.organisation, None
    return None, None


def check_can_edit(*, user, portal: Portal, operations: list[dict]) -> None:
    if not can_edit(user, portal):
        # A narrower role still lets an editor touch their own organisation or service.
        for i, op in enumerate(operations):
            org, service = _scope_of(portal, op) if isinstance(op, dict) and "op" in op else (None, None)
            if (org is None and service is None) or not can_edit(user, portal, org, service):
                raise PermissionDenied("you may not edit this part of the page", f"operations[{i}]")


# --- Changesets: draft, approval, publication ---------------------------------------------------


def needs_approval(portal: Portal, operations: list[dict]) -> bool:
    """A change needs a second editor when its portal, or any organisation it touches, says so."""
    if portal.requires_approval:
        return True
    for op in operations:
        org, _service = _scope_of(portal, op)
        if org is not None and org.requires_approval:
            return True
    return False


def changeset_create(
    *, portal: Portal, user, actor: Actor, title: str, operations: list[dict], now: dt.datetime,
    idempotency_key: str | None = None,
) -> ChangeSet:
    """Save a draft. Nothing public changes until ``changeset_publish``."""
    if idempotency_key:
        existing = ChangeSet.objects.filter(portal=portal, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    cleaned, errors = validate_operations(operations, editorial=True)
    if errors:
        raise OperationsInvalid(errors)
    if not cleaned:
        raise OperationsInvalid([OpError("operations", "a change needs at least one operation")])
    if user is not None:
        check_can_edit(user=user, portal=portal, operations=cleaned)
    title = (title or "").strip()[:200] or "Changement"
    try:
        with transaction.atomic():
            cs = ChangeSet.objects.create(
                portal=portal, author=user, author_ref=actor.ref, title=title, operations=cleaned,
                created_at=now, idempotency_key=idempotency_key or None,
            )
            journal_append(actor=actor, operation="status.changeset.create", objects=[cs], payload=cleaned,
                           details={"operations": len(cleaned)}, now=now)
    except IntegrityError:
        existing = ChangeSet.objects.filter(portal=portal, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    return cs


def changeset_append(
    *, changeset: ChangeSet, user, actor: Actor, operations: list[dict], now: dt.datetime,
    idempotency_key: str | None = None,
) -> ChangeSet:
    """Add operations to a draft: only its author may, only while it is a draft.

    Retrying with the same ``idempotency_key`` adds nothing the second time.
    """
    cleaned, errors = validate_operations(operations, editorial=True)
    if errors:
        raise OperationsInvalid(errors)
    if not cleaned:
        raise OperationsInvalid([OpError("operations", "a change needs at least one operation")])
    with transaction.atomic():
        cs = ChangeSet.objects.select_for_update().select_related("portal").get(pk=changeset.pk)
        if idempotency_key and idempotency_key in cs.append_keys:
            return cs
        if cs.status != ChangeSet.Status.DRAFT:
            raise StatusError(f"this change is {cs.get_status_display()}: only a draft can be added to")
        if user is not None:
            if cs.author_id != user.pk:
                raise PermissionDenied("only the author of a draft may add to it")
            check_can_edit(user=user, portal=cs.portal, operations=cleaned)
        cs.operations = [*cs.operations, *cleaned]
        if idempotency_key:
            cs.append_keys = [*cs.append_keys, idempotency_key]
        cs.save(update_fields=["operations", "append_keys"])
        journal_append(actor=actor, operation="status.changeset.append", objects=[cs], payload=cleaned,
                       details={"operations": len(cleaned), "total": len(cs.operations)}, now=now)
    return cs


def changeset_publish(*, changeset: ChangeSet, user, actor: Actor, now: dt.datetime) -> ChangeSet:
    """Publish a draft, or submit it for approval when the portal requires a second editor.

    Publishing a changeset that is already published does nothing (a double click acts once).
    """
    with transaction.atomic(durable=True):
        cs = ChangeSet.objects.select_for_update().select_related("portal").get(pk=changeset.pk)
        if cs.status == ChangeSet.Status.PUBLISHED:
            return cs
        if cs.status not in (ChangeSet.Status.DRAFT, ChangeSet.Status.PENDING):
            raise StatusError(f"this change is {cs.get_status_display()} and cannot be published")
        if user is not None:
            check_can_edit(user=user, portal=cs.portal, operations=cs.operations)
        if needs_approval(cs.portal, cs.operations):
            if cs.status == ChangeSet.Status.DRAFT:
                cs.status = ChangeSet.Status.PENDING
                cs.submitted_at = now
                cs.save(update_fields=["status", "submitted_at"])
                journal_append(actor=actor, operation="status.changeset.submit", objects=[cs], now=now)
                return cs
            if user is None or cs.author_id == user.pk or cs.author_ref == actor.ref:
                raise StatusError("a second editor must approve this change")
            cs.decided_by = user
            cs.decided_at = now
        apply_operations(portal=cs.portal, operations=cs.operations, actor=actor, now=now)
        cs.status = ChangeSet.Status.PUBLISHED
        cs.published_at = now
        cs.save(update_fields=["status", "published_at", "decided_by", "decided_at"])
        journal_append(actor=actor, operation="status.changeset.publish", objects=[cs], payload=cs.operations,
                       details={"operations": len(cs.operations)}, now=now)
        transaction.on_commit(lambda: _notify(cs.pk))
    return cs


def changeset_reject(*, changeset: ChangeSet, user, actor: Actor, now: dt.datetime) -> ChangeSet:
    with transaction.atomic(durable=True):
        cs = ChangeSet.objects.select_for_update().get(pk=changeset.pk)
        if cs.status not in (ChangeSet.Status.DRAFT, ChangeSet.Status.PENDING):
            raise StatusError(f"this change is {cs.get_status_display()}")
        if user is not None:
            check_can_edit(user=user, portal=cs.portal, operations=cs.operations)
        cs.status = ChangeSet.Status.REJECTED if cs.status == ChangeSet.Status.PENDING else ChangeSet.Status.DISCARDED
        cs.decided_by = user
        cs.decided_at = now
        cs.save(update_fields=["status", "decided_by", "decided_at"])
        journal_append(actor=actor, operation="status.changeset.reject", objects=[cs], now=now)
    return cs


def _notify(changeset_id: int) -> None:
    from .tasks import notify_subscribers

    notify_subscribers.enqueue(changeset_id=changeset_id)


def publish_now(
    *, portal_slug: str, operations: list[dict], actor: Actor, title: str, now: dt.datetime | None = None,
    as_of: dt.datetime | None = None,
) -> ChangeSet:
    """Create (the portal too, if new) and publish in one transaction, bypassing approval.

    For the operator's command-line import: a file that fails validation changes nothing.
    ``as_of``: see ``apply_operations``.
    """
    now = now or timezone.now()
    cleaned, errors = validate_operations(operations)
    if errors:
        raise OperationsInvalid(errors)
    with transaction.atomic(durable=True):
        portal = Portal.objects.filter(slug=portal_slug).first()
        if portal is None:
            portal = catalog.portal_upsert(actor=actor, slug=portal_slug, name=portal_slug)
        portal = apply_operations(portal=portal, operations=cleaned, actor=actor, now=now, as_of=as_of)
        cs = ChangeSet.objects.create(
            portal=portal, author=None, author_ref=actor.ref, title=title[:200], operations=cleaned,
            created_at=now, status=ChangeSet.Status.PUBLISHED, published_at=now,
        )
        journal_append(actor=actor, operation="status.changeset.publish", objects=[cs], payload=cleaned,
                       details={"operations": len(cleaned), "direct": True}, now=now)
        transaction.on_commit(lambda: _notify(cs.pk))
    return cs
