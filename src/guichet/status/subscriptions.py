"""E-mail subscriptions to a portal's status updates: double opt-in, journalled, throttled.

Every change goes through these functions. The journal never holds an address in clear: the
address travels in the hashed ``payload`` (salted with the subscription's random token, so the
digest cannot be looked up in a list of known addresses), never in ``details``. Nothing here
logs an address either.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from guichet.catalog.models import Organisation, Portal, Service
from guichet.common.actor import Actor
from guichet.journal.services import journal_append

from .models import Subscription

LANGUAGES = ("fr", "en")
MAX_EMAIL_LENGTH = 254


class SubscriptionInvalid(ValueError):
    """Bad input; ``field`` names the faulty field, ``message`` is safe to show."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What ``subscription_request`` did. Never shown to the requester (no enumeration)."""

    subscription: Subscription
    outcome: str  # "created", "rearmed" (pending or stopped before) or "already_confirmed"


def normalise_email(raw: str) -> str:
    """The address as stored: trimmed and lower-cased, or ``SubscriptionInvalid``."""
    email = (raw or "").strip().lower()
    if not email:
        raise SubscriptionInvalid("email", str(_("Enter your e-mail address.")))
    if len(email) > MAX_EMAIL_LENGTH:
        raise SubscriptionInvalid("email", str(_("This e-mail address is too long.")))
    try:
        validate_email(email)
    except ValidationError:
        raise SubscriptionInvalid("email", str(_("Enter a valid e-mail address."))) from None
    return email


def _chain(portal: Portal, service: Service | None) -> int | None:
    """Journal chain: the service's organisation, else the portal's first organisation."""
    if service is not None:
        return service.organisation_id
    return Organisation.objects.filter(portal=portal).order_by("position", "pk").values_list("pk", flat=True).first()


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def confirm_window() -> dt.timedelta:
    return dt.timedelta(days=getattr(settings, "GUICHET_SUBSCRIPTION_CONFIRM_DAYS", 7))


def subscription_request(
    *, portal: Portal, email: str, service: Service | None, language: str, actor: Actor, now: dt.datetime
) -> RequestOutcome:
    """Create or re-arm an unconfirmed subscription and e-mail its confirmation link.

    An address already confirmed for the same scope is told so by e-mail (with its stop link);
    the requester sees the same answer in every case.
    """
    email = normalise_email(email)
    if service is not None and service.organisation.portal_id != portal.pk:
        raise SubscriptionInvalid("service", str(_("This service is not on this page.")))
    language = language if language in LANGUAGES else settings.LANGUAGE_CODE
    chain = _chain(portal, service)
    for _attempt in range(2):  # a concurrent identical request may win the insert: retry once
        try:
            with transaction.atomic(durable=True):
                sub = (
                    Subscription.objects.select_for_update()
                    .filter(portal=portal, service=service, email=email)
                    .first()
                )
                if sub is None:
                    sub = Subscription.objects.create(
                        portal=portal, service=service, email=email, language=language,
                        token=_new_token(), created_at=now,
                    )
                    outcome = "created"
                elif sub.confirmed_at is not None and sub.unsubscribed_at is None:
                    outcome = "already_confirmed"
                else:
                    sub.token = _new_token()
                    sub.language = language
                    sub.created_at = now
                    sub.confirmed_at = None
                    sub.unsubscribed_at = None
                    sub.save(update_fields=["token", "language", "created_at", "confirmed_at", "unsubscribed_at"])
                    outcome = "rearmed"
                journal_append(
                    actor=actor, operation="status.subscription.request", objects=[sub],
                    payload={"email": email, "token": sub.token, "service": service.pk if service else None},
                    details={"outcome": outcome, "language": sub.language,
                             "service": service.pk if service else None},
                    organisation_id=chain, now=now,
                )
                kind = "already" if outcome == "already_confirmed" else "confirm"
                transaction.on_commit(functools.partial(_enqueue_mail, sub.pk, kind))
            return RequestOutcome(sub, outcome)
        except IntegrityError:
            continue
    raise SubscriptionInvalid("email", str(_("Please try again in a moment.")))


def _enqueue_mail(subscription_id: int, kind: str) -> None:
    from .tasks import send_subscription_mail

    send_subscription_mail.enqueue(subscription_id=subscription_id, kind=kind)


def subscription_by_token(token: str) -> Subscription | None:
    if not token or len(token) > 64:
        return None
    return Subscription.objects.select_related("portal", "service").filter(token=token).first()


def confirmable(sub: Subscription | None, now: dt.datetime) -> bool:
    """Whether a confirmation link still works (a confirmed one keeps "working": idempotent)."""
    if sub is None or sub.unsubscribed_at is not None:
        return False
    return sub.confirmed_at is not None or sub.created_at + confirm_window() >= now


def subscription_confirm(*, token: str, actor: Actor, now: dt.datetime) -> Subscription | None:
    """Confirm by the link's token. Idempotent; ``None`` for an unknown, expired or stopped link."""
    sub = subscription_by_token(token)
    if not confirmable(sub, now):
        return None
    if sub.confirmed_at is not None:
        return sub
    with transaction.atomic(durable=True):
        updated = Subscription.objects.filter(
            pk=sub.pk, token=token, confirmed_at__isnull=True, unsubscribed_at__isnull=True
        ).update(confirmed_at=now)
        if updated:
            journal_append(
                actor=actor, operation="status.subscription.confirm", objects=[sub],
                payload={"token": token}, details={"service": sub.service_id},
                organisation_id=_chain(sub.portal, sub.service), now=now,
            )
    sub.refresh_from_db()
    return sub if sub.confirmed_at is not None and sub.unsubscribed_at is None else None


def subscription_cancel(*, token: str, actor: Actor, now: dt.datetime) -> Subscription | None:
    """Stop a subscription by its token. Idempotent; ``None`` for an unknown token."""
    sub = subscription_by_token(token)
    if sub is None:
        return None
    if sub.unsubscribed_at is not None:
        return sub
    with transaction.atomic(durable=True):
        updated = Subscription.objects.filter(pk=sub.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now)
        if updated:
            journal_append(
                actor=actor, operation="status.subscription.cancel", objects=[sub],
                payload={"token": token}, details={"service": sub.service_id, "was_confirmed": sub.confirmed_at is not None},
                organisation_id=_chain(sub.portal, sub.service), now=now,
            )
    sub.refresh_from_db()
    return sub


# --- Throttling: the form must not become a way to flood someone's mailbox ---------------------


def _limit(name: str, default: tuple[int, int]) -> tuple[int, int]:
    return tuple(getattr(settings, name, default))  # (max requests, window in seconds)


def _hit(key: str, limit: tuple[int, int]) -> bool:
    """Count one request under ``key``; whether it is still within ``limit``."""
    maximum, window = limit
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    return count <= maximum


def throttle(*, ip: str | None, email: str) -> str | None:
    """Count a subscription request; ``"ip"`` or ``"email"`` when over its limit, else ``None``.

    Keys are keyed hashes: the cache never holds an address (mail or IP) in clear.
    """
    if ip:
        ip_key = "guichet:sub:ip:" + salted_hmac("guichet.subscriptions.ip", ip).hexdigest()
        if not _hit(ip_key, _limit("GUICHET_SUBSCRIBE_LIMIT_IP", (20, 3600))):
            return "ip"
    email_key = "guichet:sub:email:" + salted_hmac("guichet.subscriptions.email", email.strip().lower()).hexdigest()
    if not _hit(email_key, _limit("GUICHET_SUBSCRIBE_LIMIT_EMAIL", (3, 3600))):
        return "email"
    return None
