"""Who may do what."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from guichet.catalog.models import Organisation, Portal, Service

from .models import ApiToken, EditorRole, StaffRole

# Every kind of role, as named by ``guichet role`` and ``user_has_role``: the two that live in
# their own tables (status editors, booking agents) and the organisation roles of ``StaffRole``.
STAFF_KINDS: tuple[str, ...] = tuple(StaffRole.Kind.values)
ROLE_KINDS: tuple[str, ...] = ("editor", "agent", *STAFF_KINDS)


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


def _active(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def organisations_for(user, kind: str, portal: Portal | None = None) -> QuerySet[Organisation]:
    """The organisations where ``user`` holds the role ``kind`` (see ``ROLE_KINDS``), optionally
    only those of ``portal``. A superuser holds every role in every organisation; an editor of a
    whole page counts as editor of each of its organisations; a booking agent limited to one site
    counts for that site's organisation."""
    if kind not in ROLE_KINDS:
        raise ValueError(f"unknown role kind {kind!r} (known: {', '.join(ROLE_KINDS)})")
    qs = Organisation.objects.all() if portal is None else Organisation.objects.filter(portal=portal)
    if not _active(user):
        return qs.none()
    if user.is_superuser:
        return qs
    if kind == "editor":
        roles = EditorRole.objects.filter(user=user)
        whole = roles.filter(organisation__isnull=True, service__isnull=True).values("portal")
        orgs = roles.filter(organisation__isnull=False).values("organisation")
        services = roles.filter(service__isnull=False).values("service__organisation")
        return qs.filter(Q(portal__in=whole) | Q(pk__in=orgs) | Q(pk__in=services))
    if kind == "agent":
        from guichet.bookings.models import AgentRole

        return qs.filter(pk__in=AgentRole.objects.filter(user=user).values("organisation"))
    return qs.filter(pk__in=StaffRole.objects.filter(user=user, kind=kind).values("organisation"))


def user_has_role(user, kind: str, organisation: Organisation) -> bool:
    """Whether ``user`` holds the role ``kind`` in ``organisation`` (superusers hold them all).

    For ``editor`` and ``agent`` this says "some scope in this organisation": a service editor
    or a one-site agent answers True; check the precise scope with ``can_edit`` or the bookings
    agent rules before acting on one service or one site."""
    return organisations_for(user, kind).filter(pk=organisation.pk).exists()


def staff_organisations(user, kind: str, portal_slug: str) -> tuple[Portal, list[Organisation]]:
    """For a staff view under ``/manage/``: the page and the organisations of it where ``user``
    holds ``kind``. Raises ``Http404`` for an unknown page and ``PermissionDenied`` when the user
    holds the role in none of its organisations."""
    portal = Portal.objects.filter(slug=portal_slug).first()
    if portal is None:
        raise Http404
    orgs = list(organisations_for(user, kind, portal))
    if not orgs:
        raise PermissionDenied
    return portal, orgs


def require_role(user, kind: str, organisation: Organisation) -> None:
    """Raise ``PermissionDenied`` unless ``user`` holds ``kind`` in ``organisation``."""
    if not user_has_role(user, kind, organisation):
        raise PermissionDenied


def roles_of(user) -> list[tuple[str, str, str]]:
    """Every role of ``user`` as ``(kind, portal slug, scope)`` rows, scope being an organisation
    slug, ``org/service``, ``org/site:slug`` or ``*`` (the whole page or organisation)."""
    from guichet.bookings.models import AgentRole

    rows: list[tuple[str, str, str]] = []
    for r in EditorRole.objects.filter(user=user).select_related("portal", "organisation", "service__organisation"):
        scope = (f"{r.service.organisation.slug}/{r.service.slug}" if r.service
                 else r.organisation.slug if r.organisation else "*")
        rows.append(("editor", r.portal.slug, scope))
    for a in AgentRole.objects.filter(user=user).select_related("organisation__portal", "site"):
        rows.append(("agent", a.organisation.portal.slug,
                     a.organisation.slug + (f"/site:{a.site.slug}" if a.site else "")))
    for s in StaffRole.objects.filter(user=user).select_related("organisation__portal"):
        rows.append((s.kind, s.organisation.portal.slug, s.organisation.slug))
    return sorted(rows)


def is_staff_member(user) -> bool:
    """Whether ``user`` is staff: must use two-factor authentication for every staff page.
    Staff are superusers, ``is_staff`` accounts, and anyone holding a role."""
    if not _active(user):
        return False
    if user.is_superuser or user.is_staff:
        return True
    # One query: any role in any of the three tables.
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user.pk).filter(
        Q(staff_roles__isnull=False) | Q(editor_roles__isnull=False) | Q(booking_agent_roles__isnull=False)
    ).exists()
