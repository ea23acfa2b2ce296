"""Background work for bookings: the e-mail telling a family a place is offered to them.

Tasks take ids, never model instances, and log ids only, never an address.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from guichet.common.frdates import format_date_fr

from .deadlines import format_deadline
from .models import WaitlistEntry
from .services import OFFER_RESUME_MIN_HOURS

log = logging.getLogger(__name__)


@task()
def send_waitlist_offer(entry_id: int) -> bool:
    """Tell the household a place is held for them: which day, until when (in plain French), and
    the links to answer (the offer on the family portal's home page) and to the calendar."""
    entry = (
        WaitlistEntry.objects.select_related(
            "household", "child", "session__activity", "session__site", "unit", "organisation__portal")
        .filter(pk=entry_id, status=WaitlistEntry.Status.OFFERED)
        .first()
    )
    if entry is None or not entry.household.email:
        return False
    portal = entry.organisation.portal.slug
    base = settings.GUICHET_PUBLIC_URL
    with translation.override("fr"):
        values = {
            "child": entry.child.first_name,
            "activity": entry.session.activity.name,
            "site": entry.session.site.name,
            "date": format_date_fr(entry.session.date, weekday=True),
            "unit": entry.unit.name,
            "until": format_deadline(entry.offer_expires_at, with_year=True) if entry.offer_expires_at else "",
        }
        subject = _("A place is available for %(child)s on %(date)s") % values
        if entry.offer_paused_at is not None:  # online booking is suspended: the offer waits
            values["hours"] = min(entry.session.activity.offer_hours, OFFER_RESUME_MIN_HOURS)
            body = _(
                "A place has been freed for %(child)s: %(activity)s, %(site)s, %(date)s (%(unit)s).\n\n"
                "Online booking is suspended for now: your offer is kept while it is, and you will have "
                "at least %(hours)s hours to answer once it reopens (we will write to you). You can also "
                "accept it now at the counter or by phone.\n"
            ) % values
        else:
            body = _(
                "A place has been freed for %(child)s: %(activity)s, %(site)s, %(date)s (%(unit)s).\n\n"
                "It is kept for you until %(until)s. Accept or decline it in your family portal; "
                "after that time it goes to the next family on the waiting list.\n"
            ) % values
        body += "\n" + _("Accept or decline the place: %(answer)s\nYour children's calendar: %(calendar)s\n") % {
            "answer": f"{base}{reverse('bookings:home', args=[portal])}#offre-{entry.pk}",
            "calendar": f"{base}{reverse('bookings:calendar', args=[portal])}",
        }
    EmailMessage(subject, body, None, [entry.household.email]).send()
    log.info("waiting-list offer e-mail sent for entry #%s", entry.pk)
    return True


@task()
def send_basket_confirmation(basket_id: int) -> bool:
    """After a basket is answered: the outcome of each day, in French, to the household."""
    return _confirm_basket(basket_id)


@task()
def send_basket_confirmations(basket_ids: list[int]) -> int:
    """The confirmations of a drain's batch (one task for up to 200 answered baskets): each
    basket's e-mail on its own, so one that fails does not keep the others from being sent.
    Returns how many were sent."""
    sent = 0
    for basket_id in basket_ids:
        try:
            sent += bool(_confirm_basket(int(basket_id)))
        except Exception:  # noqa: BLE001 - one failed e-mail must not stop the batch
            log.exception("could not send the confirmation e-mail of basket #%s", basket_id)
    return sent


def _confirm_basket(basket_id: int) -> bool:
    from .models import Basket, Child, Session, Unit

    basket = Basket.objects.select_related("household").filter(pk=basket_id, status=Basket.Status.DONE).first()
    if basket is None or not basket.household.email:
        return False
    items = (basket.result or {}).get("items", [])
    children = dict(Child.objects.filter(household=basket.household).values_list("pk", "first_name"))
    sessions = Session.objects.select_related("activity", "site").in_bulk([i.get("session") for i in items])
    units = {(u.activity_id, u.code): u.name for u in Unit.objects.filter(
        activity_id__in={s.activity_id for s in sessions.values()})}
    with translation.override("fr"):
        outcome_words = {"booked": _("Booked"), "waitlisted": _("On the waiting list"), "refused": _("Not booked")}
        lines = []
        for i in items:
            s = sessions.get(i.get("session"))
            where = f"{format_date_fr(s.date, weekday=True)}, {s.activity.name}, {s.site.name}" if s else "?"
            unit = units.get((s.activity_id, i.get("unit")), i.get("unit")) if s else i.get("unit")
            line = f"- {children.get(i.get('child'), '?')} : {where} ({unit}) : {outcome_words.get(i.get('outcome'), '?')}"
            if i.get("outcome") == "waitlisted" and i.get("position"):
                line += " " + _("(position %(n)s)") % {"n": i["position"]}
            elif i.get("outcome") == "refused" and i.get("message"):
                line += f" — {i['message']}"
            lines.append(line)
        subject = _("Your booking request no. %(n)s") % {"n": basket.pk}
        body = _("Your request no. %(n)s has been answered:\n\n%(lines)s\n\nSee and manage your bookings in your family portal.\n") % {
            "n": basket.pk, "lines": "\n".join(lines)}
    EmailMessage(subject, body, None, [basket.household.email]).send()
    log.info("basket confirmation e-mail sent for basket #%s", basket.pk)
    return True
