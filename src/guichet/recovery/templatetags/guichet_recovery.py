"""``{% online_notices household "booking" "cancellation" %}``: on a family page, the online
functions that the status board has suspended or disrupted, with what to do instead."""

from django import template
from django.utils import timezone

from guichet.recovery import gates

register = template.Library()


@register.inclusion_tag("recovery/_online_notices.html")
def online_notices(household, *functions):
    if household is None:
        return {"notices": []}
    return {"notices": gates.notices(organisation_id=household.organisation_id, functions=functions,
                                     now=timezone.now())}


@register.filter
def euros(cents) -> str:
    from guichet.common.money import format_euros

    return format_euros(int(cents or 0))
