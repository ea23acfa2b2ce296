"""Several guardians per household: a guardian invites another by e-mail; the invited person
signs in (or signs up) with THAT address and accepts. The invitation is a signed link, valid
``INVITE_DAYS`` days, bound to the household and the invited address: a forwarded link is of no
use to anyone else. Joining twice changes nothing.

(Owned by the accounts work of issue 7; kept in bookings because it writes ``Guardian`` rows.)
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from guichet.common.actor import Actor
from guichet.common.crypto import blind_index
from guichet.journal.services import journal_append

from .models import Guardian, Household

INVITE_SALT = "guichet.bookings.guardian-invite"
INVITE_DAYS = 7
MAX_GUARDIANS = 4


class GuardianError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class Invitation:
    household: Household
    email: str
    inviter_id: int


def invitation_read(token: str) -> Invitation:
    """The invitation behind a link; ``GuardianError('token', ...)`` when invalid or expired."""
    from django.utils.translation import gettext as _

    try:
        data = signing.TimestampSigner(salt=INVITE_SALT).unsign_object(token, max_age=INVITE_DAYS * 24 * 3600)
    except signing.SignatureExpired:
        raise GuardianError("token", _("This invitation has expired: ask for a new one.")) from None
    except (signing.BadSignature, ValueError, TypeError):
        raise GuardianError("token", _("This invitation link is not valid: check that it was copied whole.")) from None
    household = Household.objects.select_related("organisation__portal").filter(pk=data.get("h")).first()
    if household is None:
        raise GuardianError("token", _("This invitation link is not valid: check that it was copied whole."))
    return Invitation(household, str(data.get("e", "")), int(data.get("i", 0)))


def guardian_invite(*, household: Household, inviter, email: str, actor: Actor, now=None) -> str:
    """E-mail an invitation to become a guardian of ``household``; returns the link."""
    from django.utils.translation import gettext as _

    now = now or timezone.now()
    email = email.strip().lower()
    if not Guardian.objects.filter(household=household, user=inviter).exists():
        raise GuardianError("household", _("Only a guardian of this family file may invite."))
    if Guardian.objects.filter(household=household, user__email__iexact=email).exists():
        raise GuardianError("email", _("This person is already a guardian of your family file."))
    if Guardian.objects.filter(household=household).count() >= MAX_GUARDIANS:
        raise GuardianError("email", _("A family file has at most %(n)d guardians.") % {"n": MAX_GUARDIANS})
    token = signing.TimestampSigner(salt=INVITE_SALT).sign_object({"h": household.pk, "e": email, "i": inviter.pk})
    link = settings.GUICHET_PUBLIC_URL + reverse("accounts:join", args=[token])
    language = translation.get_language()
    context = {"link": link, "days": INVITE_DAYS, "portal": household.organisation.portal,
               "household": household}

    def send():
        with translation.override(language):
            subject = render_to_string("accounts/email/invite_subject.txt", context).strip()
            body = render_to_string("accounts/email/invite_body.txt", context)
        EmailMessage(" ".join(subject.split()), body, None, [email]).send()

    with transaction.atomic():
        journal_append(actor=actor, operation="bookings.guardian.invite", objects=[household],
                       payload={"email": blind_index("accounts.email", email)}, details={"household": household.pk},
                       organisation_id=household.organisation_id, now=now)
        transaction.on_commit(send)
    return link


def guardian_join(*, token: str, user, actor: Actor, now=None) -> tuple[Guardian, bool]:
    """Accept an invitation with the signed-in account ``user``, whose e-mail must be the invited
    one. Returns the guardian row and whether it was created."""
    from django.utils.translation import gettext as _

    now = now or timezone.now()
    invitation = invitation_read(token)
    if (user.email or "").lower() != invitation.email:
        raise GuardianError("email", _("This invitation was sent to another e-mail address: sign in with "
                                       "the account of that address."))
    household = invitation.household
    with transaction.atomic():
        Household.objects.select_for_update().filter(pk=household.pk).first()  # one join at a time
        existing = Guardian.objects.filter(household=household, user=user).first()
        if existing is not None:
            return existing, False
        if Guardian.objects.filter(household=household).count() >= MAX_GUARDIANS:
            raise GuardianError("email", _("A family file has at most %(n)d guardians.") % {"n": MAX_GUARDIANS})
        guardian = Guardian.objects.create(organisation_id=household.organisation_id, household=household, user=user)
        journal_append(actor=actor, operation="bookings.guardian.add", objects=[household, guardian],
                       details={"household": household.pk, "guardian": guardian.pk, "by": "invitation"},
                       organisation_id=household.organisation_id, now=now)
    return guardian, True
