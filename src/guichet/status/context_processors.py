from django.utils import timezone

from guichet.catalog.models import Portal

from .selectors import banner


def incident_banner(request):
    """While an incident is active, every page of its portal carries a banner."""
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("portal") if match else None
    if not slug:
        return {}
    portal = Portal.objects.filter(slug=slug).first()
    if portal is None:
        return {}
    return {"portal": portal, "incident_banner": banner(portal, timezone.now())}
