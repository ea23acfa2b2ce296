"""Staff roles. Families' accounts come with the family portal."""

import hashlib

from django.conf import settings
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
