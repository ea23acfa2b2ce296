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


@register.simple_tag
def recovery_portals(user) -> list[str]:
    """The pages (slugs) whose coming-back screen ``user`` may open (staff home)."""
    from guichet.accounts.selectors import organisations_for
    from guichet.recovery.views import SCREEN_KINDS

    if not getattr(user, "is_authenticated", False):
        return []
    slugs: set[str] = set()
    for kind in SCREEN_KINDS:
        slugs |= set(organisations_for(user, kind).values_list("portal__slug", flat=True))
    return sorted(slugs)
