"""Background work for the status board: e-mailing subscribers when a change is published."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from .models import ChangeSet, Subscription

log = logging.getLogger(__name__)


def _touched_service_slugs(operations: list[dict]) -> set[str]:
    return {op["service"] for op in operations if op.get("service")} | {
        op["slug"] for op in operations if op.get("op") == "service.set"
    }


@task()
def notify_subscribers(changeset_id: int) -> int:
    """Send one e-mail per confirmed subscriber concerned by a published change."""
    cs = ChangeSet.objects.select_related("portal").filter(pk=changeset_id, status=ChangeSet.Status.PUBLISHED).first()
    if cs is None:
        return 0
    touched = _touched_service_slugs(cs.operations)
    subs = Subscription.objects.filter(portal=cs.portal, confirmed_at__isnull=False, unsubscribed_at__isnull=True)
    sent = 0
    for sub in subs.select_related("service"):
        if sub.service is not None and sub.service.slug not in touched:
            continue
        with translation.override(sub.language):
            page = settings.GUICHET_PUBLIC_URL + reverse("status:page", kwargs={"portal": cs.portal.slug})
            stop = settings.GUICHET_PUBLIC_URL + reverse("status:unsubscribe", kwargs={"token": sub.token})
            subject = _("%(portal)s: service status updated") % {"portal": cs.portal.tr("name")}
            body = _(
                "The status of public services has been updated: %(title)s\n\n"
                "See what works and what to do instead: %(page)s\n\n"
                "To stop these e-mails: %(stop)s\n"
            ) % {"title": cs.title, "page": page, "stop": stop}
        send_mail(subject, body, None, [sub.email])
        sent += 1
    log.info("status notification for changeset %s: %s e-mail(s) sent", cs.pk, sent)
    return sent
