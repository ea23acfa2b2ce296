"""Background work for bookings: the e-mail telling a family a place is offered to them.

Tasks take ids, never model instances, and log ids only, never an address.
"""

from __future__ import annotations

import logging

from django.core.mail import EmailMessage
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from .deadlines import format_deadline
from .models import WaitlistEntry

log = logging.getLogger(__name__)


@task()
def send_waitlist_offer(entry_id: int) -> bool:
    """Tell the household a place is held for them, and until when."""
    entry = (
        WaitlistEntry.objects.select_related("household", "child", "session__activity", "session__site", "unit")
        .filter(pk=entry_id, status=WaitlistEntry.Status.OFFERED)
        .first()
    )
    if entry is None or not entry.household.email:
        return False
    with translation.override("fr"):
        values = {
            "child": entry.child.first_name,
            "activity": entry.session.activity.name,
            "site": entry.session.site.name,
            "date": entry.session.date.strftime("%d/%m/%Y"),
            "unit": entry.unit.name,
            "until": format_deadline(entry.offer_expires_at, with_year=True) if entry.offer_expires_at else "",
        }
        subject = _("A place is available for %(child)s on %(date)s") % values
        body = _(
            "A place has been freed for %(child)s: %(activity)s, %(site)s, %(date)s (%(unit)s).\n\n"
            "It is kept for you until %(until)s. Accept or decline it in your family portal; "
            "after that time it goes to the next family on the waiting list.\n"
        ) % values
    EmailMessage(subject, body, None, [entry.household.email]).send()
    log.info("waiting-list offer e-mail sent for entry #%s", entry.pk)
    return True
