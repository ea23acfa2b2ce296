"""Staff roles. Families' accounts come with the family portal."""

import hashlib

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils.translation import gettext_lazy as _

from guichet.catalog.models import Organisation, Portal, Service


class EditorRole(models.Model):
    """May prepare and publish status changes: for a whole portal, one organisation, or one service."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="editor_roles")
    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "portal", "organisation", "service"], name="accounts_editorrole_unique"
            )
        ]

    def __str__(self) -> str:
        scope = self.service or self.organisation or self.portal
        return _("editor of %(scope)s") % {"scope": scope}


class ApiToken(models.Model):
    """A bearer token for the write API. Only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()


class StaffRole(models.Model):
    """A staff member's role in one organisation, beyond status editors and booking agents.

    - ``finance``: invoice runs, payments, credit notes, direct debits, treasury exports;
    - ``it``: backups, restore drills, journal verification, degraded-mode switches;
    - ``admin``: the organisation's administrator (staff accounts and their roles);
    - ``counter``: counter agents taking deposits (cash, cheque) and recording requests.

    A superuser holds every role everywhere. Read them through ``accounts.selectors``.
    """

    class Kind(models.TextChoices):
        FINANCE = "finance", _("Finance")
        IT = "it", _("IT")
        ADMIN = "admin", _("Administrator")
        COUNTER = "counter", _("Counter agent (deposits)")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_roles")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    granted_at = models.DateTimeField()

    class Meta:
        ordering = ["organisation", "kind", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation", "kind"], name="accounts_staffrole_unique"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["finance", "it", "admin", "counter"]), name="accounts_staffrole_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return _("%(kind)s of %(organisation)s") % {"kind": self.get_kind_display(), "organisation": self.organisation}


class RecordAccess(models.Model):
    """A staff member opened a household's record (its page, a justification file, its account).

    Append-only, kept ``ACCESS_LOG_DAYS`` (see ``accounts.access``). Holds ids only: the
    household is named by its id (the row outlives an erased household), never by its name."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household_id = models.BigIntegerField(db_index=True)
    what = models.CharField(max_length=40, help_text=_("What was opened, e.g. household, document, account."))
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"access #{self.pk}"


class ErasureRequest(models.Model):
    """A family asked for its data to be erased (RGPD art. 17). An agent reviews what can and
    cannot be erased (``personal_data.erasure_assessment``) and records the answer."""

    class Status(models.TextChoices):
        OPEN = "open", _("Received, to review")
        ANSWERED = "answered", _("Answered")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household_id = models.BigIntegerField(db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    # Set when an agent executed the erasure (``personal_data.erasure_execute``).
    erased_at = models.DateTimeField(null=True, blank=True)
    erased_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(fields=["household_id"], condition=models.Q(status="open"),
                                    name="accounts_erasure_one_open_per_household"),
        ]

    def __str__(self) -> str:
        return f"erasure request #{self.pk}"


class UserSession(AbstractBaseSession):
    """Django's database session (``SESSION_ENGINE = "guichet.accounts.sessions"``) with the
    signed-in account beside its data, so that every signed-in request reads its session and
    its account in one statement (``sessions.SessionStore``). Deleting an account deletes its
    sessions."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        # No constraint in the database: a session saved at the end of a request whose account
        # was deleted meanwhile must not fail that response (its next read finds no account).
        db_constraint=False,
    )

    class Meta(AbstractBaseSession.Meta):
        db_table = "accounts_session"

    @classmethod
    def get_session_store_class(cls):
        from .sessions import SessionStore

        return SessionStore
