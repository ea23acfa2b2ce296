"""Background work for the status board: subscription e-mails and update notifications.

Tasks take ids, never model instances, and log counts and ids, never an address.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django_tasks import task

from .models import AffectedService, ChangeSet, Incident, State, Subscription

log = logging.getLogger(__name__)


def _absolute(name: str, **kwargs) -> str:
    return settings.GUICHET_PUBLIC_URL + reverse(name, kwargs=kwargs)


def _render_mail(template: str, context: dict) -> tuple[str, str]:
    subject = render_to_string(f"status/email/{template}_subject.txt", context)
    body = render_to_string(f"status/email/{template}_body.txt", context)
    return " ".join(subject.split()), body


# --- Confirmation ------------------------------------------------------------------------------


@task()
def send_subscription_mail(subscription_id: int, kind: str = "confirm") -> bool:
    """The double opt-in e-mail (``kind="confirm"``), or the "you are already subscribed" one."""
    sub = Subscription.objects.select_related("portal", "service").filter(pk=subscription_id).first()
    if sub is None or sub.unsubscribed_at is not None:
        return False
    if kind == "confirm" and sub.confirmed_at is not None:
        return False
    with translation.override(sub.language):
        context = {
            "portal": sub.portal,
            "service": sub.service,
            "confirm_url": _absolute("status:confirm", token=sub.token),
            "stop_url": _absolute("status:unsubscribe", token=sub.token),
            "page_url": _absolute("status:page", portal=sub.portal.slug),
        }
        subject, body = _render_mail("confirm" if kind == "confirm" else "already", context)
    EmailMessage(subject, body, None, [sub.email]).send()
    log.info("subscription e-mail %s sent for subscription #%s", kind, sub.pk)
    return True


# --- Notification of a published change -----------------------------------------------------------


def touched_service_ids(cs: ChangeSet) -> set[int]:
    """The services a changeset changed, as ids on its portal.

    Closing an incident changes every service it listed.
    """
    slugs = {op["service"] for op in cs.operations if op.get("service")} | {
        op["slug"] for op in cs.operations if op.get("op") == "service.set"
    }
    from guichet.catalog.models import Service

    ids = set(Service.objects.filter(organisation__portal=cs.portal, slug__in=slugs).values_list("pk", flat=True))
    closed = [op["incident"] for op in cs.operations if op.get("op") == "incident.close"]
    if closed:
        incidents = Incident.objects.filter(organisation__portal=cs.portal, slug__in=closed)
        ids |= set(AffectedService.objects.filter(incident__in=incidents).values_list("service_id", flat=True))
    return ids


def _batch_size() -> int:
    return max(1, int(getattr(settings, "GUICHET_NOTIFY_BATCH_SIZE", 200)))


@task()
def notify_subscribers(changeset_id: int, after_id: int = 0) -> int:
    """E-mail every confirmed subscriber concerned by a published change: one e-mail per address.

    Works through subscriptions in batches of ``GUICHET_NOTIFY_BATCH_SIZE`` (by id, after
    ``after_id``) and enqueues itself for the next batch, so one task stays short. An address
    with several subscriptions (all services, or a few services) gets one e-mail, sent with the
    batch of its lowest subscription id.
    """
    from .selectors import page_state

    cs = (
        ChangeSet.objects.select_related("portal")
        .filter(pk=changeset_id, status=ChangeSet.Status.PUBLISHED)
        .first()
    )
    if cs is None:
        return 0
    touched = touched_service_ids(cs)
    concerned = Subscription.objects.filter(
        portal=cs.portal, confirmed_at__isnull=False, unsubscribed_at__isnull=True
    ).filter(Q(service__isnull=True) | Q(service_id__in=touched))
    batch = list(concerned.filter(pk__gt=after_id).order_by("pk")[: _batch_size()])
    if not batch:
        return 0
    last_id = batch[-1].pk
    groups: dict[str, list[Subscription]] = defaultdict(list)
    for sub in concerned.filter(email__in={s.email for s in batch}).select_related("service").order_by("pk"):
        groups[sub.email].append(sub)

    state = page_state(cs.portal, timezone.now())
    changed = [ss for ss in state.services if ss.service.pk in touched]
    messages = []
    for email, subs in groups.items():
        if not (after_id < subs[0].pk <= last_id):
            continue  # sent (or to be sent) with another batch
        everything = any(s.service_id is None for s in subs)
        mine = {s.service_id for s in subs}
        services = [ss for ss in changed if everything or ss.service.pk in mine]
        owner = next((s for s in subs if s.service_id is None), subs[0])
        messages.append(_update_message(cs, email, owner, subs, services))
    sent = _send_all(messages, changeset_id)
    log.info("changeset %s: %s notification(s) sent after subscription #%s", cs.pk, sent, after_id)
    if len(batch) == _batch_size():
        notify_subscribers.enqueue(changeset_id=changeset_id, after_id=last_id)
    return sent


def _update_message(cs: ChangeSet, email: str, owner: Subscription, subs: list[Subscription], services) -> EmailMessage:
    with translation.override(owner.language):
        rows = [
            {
                "name": ss.service.tr("name"),
                "state": ss.state,
                "state_label": str(State(ss.state).label),
                "headline": next((a.tr("headline") for a in ss.affected if a.headline), ""),
                "url": _absolute("status:service", portal=cs.portal.slug, service=ss.service.slug),
            }
            for ss in services
        ]
        context = {
            "portal": cs.portal,
            "changeset": cs,
            "services": rows,
            "page_url": _absolute("status:page", portal=cs.portal.slug),
            "stops": [
                {"service": s.service.tr("name") if s.service else "", "url": _absolute("status:unsubscribe", token=s.token)}
                for s in subs
            ],
        }
        subject, body = _render_mail("update", context)
    return EmailMessage(subject, body, None, [email])


def _send_all(messages: list[EmailMessage], changeset_id: int) -> int:
    if not messages:
        return 0
    sent = failed = 0
    with get_connection() as connection:
        for message in messages:
            message.connection = connection
            try:
                sent += message.send()
            except Exception:  # one bad address must not stop the others
                failed += 1
    if failed:
        log.warning("changeset %s: %s notification(s) could not be sent", changeset_id, failed)
    return sent
