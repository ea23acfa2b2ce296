"""Staff accounts: editors of the status board and their API tokens.

Every function validates its input (``AccountError`` names the faulty argument), writes in one
transaction and journals the change. The journal never holds an e-mail address in clear: only
ids in ``details``; the payload (which may hold the address) is hashed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from guichet.catalog.models import Organisation, Portal, Service
from guichet.common.actor import Actor
from guichet.common.crypto import blind_index
from guichet.journal.services import journal_append

from .models import ApiToken, EditorRole, StaffRole

TOKEN_PREFIX = "gch_"


class AccountError(ValueError):
    """Bad input; ``field`` names the argument, ``message`` says what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EditorAdded:
    user: object
    role: EditorRole
    user_created: bool
    role_created: bool
    generated_password: str | None  # shown once to the operator, never stored in clear


def _clean_email(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError("email", f"'{email}' is not an e-mail address") from None
    return email.lower()


def find_user(email: str):
    email = _clean_email(email)
    User = get_user_model()
    return (User.objects.filter(email__iexact=email).order_by("pk").first()
            or User.objects.filter(username__iexact=email).order_by("pk").first())


def _scope(portal_slug: str, organisation_slug: str | None, service_slug: str | None):
    portal = Portal.objects.filter(slug=portal_slug).first()
    if portal is None:
        known = ", ".join(Portal.objects.values_list("slug", flat=True)) or "none yet"
        raise AccountError("portal", f"no page '{portal_slug}' (known: {known})")
    organisation = None
    if organisation_slug:
        organisation = Organisation.objects.filter(portal=portal, slug=organisation_slug).first()
        if organisation is None:
            known = ", ".join(Organisation.objects.filter(portal=portal).values_list("slug", flat=True)) or "none"
            raise AccountError("organisation", f"no organisation '{organisation_slug}' on page '{portal.slug}' (known: {known})")
    service = None
    if service_slug:
        qs = Service.objects.filter(organisation__portal=portal, slug=service_slug).select_related("organisation")
        if organisation is not None:
            qs = qs.filter(organisation=organisation)
        found = list(qs)
        if not found:
            raise AccountError("service", f"no service '{service_slug}' on page '{portal.slug}'"
                               + (f" in organisation '{organisation.slug}'" if organisation else ""))
        if len(found) > 1:
            raise AccountError("service", f"service '{service_slug}' is ambiguous: give --organisation too")
        service = found[0]
        organisation = service.organisation
    return portal, organisation, service


def editor_add(
    *, email: str, portal_slug: str, organisation_slug: str | None = None, service_slug: str | None = None,
    password: str | None = None, actor: Actor, now=None,
) -> EditorAdded:
    """Create or find the staff user with this e-mail and grant an editor role on a page.

    The role covers the whole page, one organisation, or one service. A new user without
    ``password`` gets a random one, returned once; an existing user's password is only changed
    when ``password`` is given.
    """
    now = now or timezone.now()
    email = _clean_email(email)
    portal, organisation, service = _scope(portal_slug, organisation_slug, service_slug)
    User = get_user_model()
    generated = None
    with transaction.atomic():
        user = find_user(email)
        user_created = user is None
        if user_created:
            user = User(username=email, email=email, is_staff=True, is_active=True)
            if password is None:
                generated = secrets.token_urlsafe(15)
        if password is not None:
            try:
                validate_password(password, user)
            except ValidationError as e:
                raise AccountError("password", " ".join(e.messages)) from None
        if password is not None or generated is not None:
            user.set_password(password if password is not None else generated)
        if not user.is_staff:
            user.is_staff = True
        user.save()
        role, role_created = EditorRole.objects.get_or_create(
            user=user, portal=portal, organisation=organisation, service=service
        )
        journal_append(
            actor=actor, operation="accounts.editor.add", objects=[user, role],
            payload={"email": blind_index("accounts.email", email), "portal": portal.slug, "organisation": getattr(organisation, "slug", None),
                     "service": getattr(service, "slug", None)},
            details={"user_created": user_created, "role_created": role_created,
                     "password_set": password is not None or generated is not None,
                     "scope": "service" if service else "organisation" if organisation else "portal"},
            organisation_id=organisation.pk if organisation else None, now=now,
        )
    return EditorAdded(user, role, user_created, role_created, generated)


def editor_remove(*, email: str, portal_slug: str, organisation_slug: str | None = None,
                  service_slug: str | None = None, actor: Actor, now=None) -> int:
    """Withdraw one editor role; returns how many roles were removed (0 or 1)."""
    now = now or timezone.now()
    portal, organisation, service = _scope(portal_slug, organisation_slug, service_slug)
    user = find_user(email)
    if user is None:
        raise AccountError("email", "no account with this e-mail address")
    with transaction.atomic():
        deleted, _ = EditorRole.objects.filter(user=user, portal=portal, organisation=organisation,
                                               service=service).delete()
        if deleted:
            journal_append(actor=actor, operation="accounts.editor.remove", objects=[user],
                           payload={"portal": portal.slug}, details={"roles_removed": deleted},
                           organisation_id=organisation.pk if organisation else None, now=now)
    return deleted


def token_create(*, email: str, name: str, actor: Actor, now=None) -> tuple[ApiToken, str]:
    """A new API bearer token for an existing, active user. Returns it with its raw value,
    which is shown once: only its SHA-256 digest is stored."""
    now = now or timezone.now()
    name = (name or "").strip()
    if not name:
        raise AccountError("name", "give the token a name (what it is for, e.g. 'import-script')")
    if len(name) > 100:
        raise AccountError("name", f"too long ({len(name)} characters, at most 100)")
    user = find_user(email)
    if user is None:
        raise AccountError("email", "no account with this e-mail address (create it with 'guichet editor add')")
    if not user.is_active:
        raise AccountError("email", "this account is deactivated")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, digest=ApiToken.hash(raw))
        journal_append(actor=actor, operation="accounts.token.create", objects=[user, token],
                       payload={"name": name}, details={"token": token.pk}, now=now)
    return token, raw


def token_revoke(*, token_id: int, actor: Actor, now=None) -> ApiToken:
    now = now or timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise AccountError("id", f"no token #{token_id}")
        if token.revoked_at is None:
            token.revoked_at = now
            token.save(update_fields=["revoked_at"])
            journal_append(actor=actor, operation="accounts.token.revoke", objects=[token],
                           details={"token": token.pk}, now=now)
    return token


# --- Organisation roles (finance, IT, administrator, counter) and booking agents --------------

ROLE_KINDS = ("editor", "agent", *StaffRole.Kind.values)


@dataclass(frozen=True)
class RoleChanged:
    user: object
    kind: str
    organisation: Organisation | None
    changed: bool  # False: the role was already there (add) or was not there (remove)
    user_created: bool = False
    generated_password: str | None = None


def _organisation(portal_slug: str, organisation_slug: str | None) -> Organisation:
    portal, organisation, _service = _scope(portal_slug, organisation_slug, None)
    if organisation is None:
        known = ", ".join(Organisation.objects.filter(portal=portal).values_list("slug", flat=True)) or "none"
        raise AccountError("organisation", f"this role is per organisation: give --organisation (known on "
                                           f"'{portal.slug}': {known})")
    return organisation


def _site(organisation: Organisation, site_slug: str | None):
    if not site_slug:
        return None
    from guichet.bookings.models import Site

    site = Site.objects.filter(organisation=organisation, slug=site_slug).first()
    if site is None:
        known = ", ".join(Site.objects.filter(organisation=organisation).values_list("slug", flat=True)) or "none"
        raise AccountError("site", f"no site '{site_slug}' in organisation '{organisation.slug}' (known: {known})")
    return site


def _check_kind(kind: str, site_slug: str | None) -> None:
    if kind not in ROLE_KINDS:
        raise AccountError("kind", f"unknown role '{kind}' (known: {', '.join(ROLE_KINDS)})")
    if kind == "editor":
        raise AccountError("kind", "status editors have their own command: guichet editor add|remove")
    if site_slug and kind != "agent":
        raise AccountError("site", "only booking agents ('--kind agent') can be limited to one site")


def role_add(
    *, email: str, kind: str, portal_slug: str, organisation_slug: str | None, site_slug: str | None = None,
    actor: Actor, now=None,
) -> RoleChanged:
    """Grant ``kind`` (finance, it, admin, counter, or agent — optionally of one site) in one
    organisation. The account is created (staff, random password returned once) when no account
    has this e-mail; an existing account becomes staff. Adding a role twice changes nothing."""
    now = now or timezone.now()
    _check_kind(kind, site_slug)
    email = _clean_email(email)
    organisation = _organisation(portal_slug, organisation_slug)
    site = _site(organisation, site_slug)
    User = get_user_model()
    generated = None
    with transaction.atomic():  # not durable: the admin calls it inside its own transaction
        user = find_user(email)
        created = user is None
        if created:
            generated = secrets.token_urlsafe(15)
            user = User(username=email, email=email, is_active=True, is_staff=True)
            user.set_password(generated)
            user.save()
        elif not user.is_active:
            raise AccountError("email", "this account is deactivated: reactivate it in the administration first")
        elif not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        if kind == "agent":
            from guichet.bookings.models import AgentRole

            _role, changed = AgentRole.objects.get_or_create(user=user, organisation=organisation, site=site)
        else:
            _role, changed = StaffRole.objects.get_or_create(
                user=user, organisation=organisation, kind=kind, defaults={"granted_at": now})
        if changed or created:
            journal_append(
                actor=actor, operation="accounts.role.add", objects=[user],
                payload={"email": blind_index("accounts.email", email), "kind": kind, "organisation": organisation.slug, "site": site_slug},
                details={"kind": kind, "user": user.pk, "user_created": created, "site": site.pk if site else None},
                organisation_id=organisation.pk, now=now,
            )
    return RoleChanged(user, kind, organisation, changed, created, generated)


def role_remove(
    *, email: str, kind: str, portal_slug: str, organisation_slug: str | None, site_slug: str | None = None,
    actor: Actor, now=None,
) -> RoleChanged:
    """Withdraw one role. The account itself stays (other roles, the journal's references)."""
    now = now or timezone.now()
    _check_kind(kind, site_slug)
    organisation = _organisation(portal_slug, organisation_slug)
    site = _site(organisation, site_slug)
    user = find_user(email)
    if user is None:
        raise AccountError("email", "no account with this e-mail address")
    with transaction.atomic():  # not durable: the admin calls it inside its own transaction
        if kind == "agent":
            from guichet.bookings.models import AgentRole

            deleted, _ = AgentRole.objects.filter(user=user, organisation=organisation, site=site).delete()
        else:
            deleted, _ = StaffRole.objects.filter(user=user, organisation=organisation, kind=kind).delete()
        if deleted:
            journal_append(actor=actor, operation="accounts.role.remove", objects=[user],
                           payload={"kind": kind, "organisation": organisation.slug, "site": site_slug},
                           details={"kind": kind, "user": user.pk}, organisation_id=organisation.pk, now=now)
    return RoleChanged(user, kind, organisation, bool(deleted))
