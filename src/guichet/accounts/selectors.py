"""Who may do what."""

from __future__ import annotations

from guichet.catalog.models import Organisation, Portal, Service

from .models import ApiToken, EditorRole


def editable_portals(user) -> list[Portal]:
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        return list(Portal.objects.all())
    return list(Portal.objects.filter(pk__in=EditorRole.objects.filter(user=user).values("portal")).distinct())


def can_edit(user, portal: Portal, organisation: Organisation | None = None, service: Service | None = None) -> bool:
    """Whether ``user`` may change this portal (``organisation`` and ``service`` narrow the scope)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    roles = EditorRole.objects.filter(user=user, portal=portal)
    for role in roles:
        if role.organisation_id is None and role.service_id is None:
            return True
        if role.service_id is not None:
            if service is not None and service.pk == role.service_id:
                return True
            continue
        org = organisation or (service.organisation if service is not None else None)
        if org is not None and org.pk == role.organisation_id:
            return True
    return False


def user_for_token(raw: str):
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.hash(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    return token.user
