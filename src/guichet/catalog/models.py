"""The service catalogue: who provides what, through which channels, where and when.

A *portal* is one public site (a town's page); it gathers one or more *organisations* (a city
and its agglomeration, a city and its associated communes). Every organisation-owned row carries
its organisation, so a deployment can host many towns and be sharded by portal.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from guichet.common.i18n import BilingualMixin


class Channel(models.TextChoices):
    ONLINE = "online", _("Online portal")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("E-mail")
    COUNTER = "counter", _("Counter, in person")
    POST = "post", _("Post")
    PAPER_FORM = "paper_form", _("Paper form")
    ON_CALL_MOBILE = "on_call_mobile", _("On-call mobile")
    OTHER = "other", _("Other")


class Portal(BilingualMixin, models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120, blank=True)
    # "A service not listed here works normally": the page's own wording of that rule.
    not_listed_statement = models.TextField(blank=True)
    not_listed_statement_en = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    requires_approval = models.BooleanField(
        default=False, help_text=_("A second editor must approve each change before it is published.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Organisation(BilingualMixin, models.Model):
    class Kind(models.TextChoices):
        CITY = "city", _("City")
        AGGLOMERATION = "agglomeration", _("Agglomeration")
        ASSOCIATED_COMMUNE = "associated_commune", _("Associated commune")
        SOCIAL_ACTION = "social_action", _("Social action centre (CCAS)")
        OTHER = "other", _("Other")

    portal = models.ForeignKey(Portal, on_delete=models.PROTECT, related_name="organisations")
    slug = models.SlugField()
    name = models.CharField(max_length=160)
    name_en = models.CharField(max_length=160, blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices, default=Kind.CITY)
    requires_approval = models.BooleanField(
        default=False,
        help_text=_("Changes to this organisation's services need a second editor's approval."),
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["portal", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["portal", "slug"], name="catalog_org_portal_slug_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Service(BilingualMixin, models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="services")
    slug = models.SlugField()
    name = models.CharField(max_length=160)
    name_en = models.CharField(max_length=160, blank=True)
    description = models.TextField(blank=True)
    description_en = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["organisation__position", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="catalog_service_org_slug_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Procedure(BilingualMixin, models.Model):
    """A "démarche": something a citizen asks of a service."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="procedures")
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["service", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "slug"], name="catalog_procedure_service_slug_unique")
        ]

    def __str__(self) -> str:
        return self.name


class ContactPoint(BilingualMixin, models.Model):
    """A phone number, an e-mail address, a counter: with its opening hours."""

    class Kind(models.TextChoices):
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("E-mail")
        ADDRESS = "address", _("Address")
        WEB = "web", _("Web site")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="contacts")
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, null=True, blank=True, related_name="contacts"
    )
    key = models.SlugField(help_text=_("Identifier used in notice files."))
    label = models.CharField(max_length=200)
    label_en = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=300, help_text=_("Number, address or URL."))
    note = models.TextField(blank=True)
    note_en = models.TextField(blank=True)
    # Opening hours in the documented schedule format (see guichet.catalog.hours).
    hours = models.JSONField(default=dict, blank=True)
    temporary = models.BooleanField(default=False, help_text=_("A crisis contact, set up for an incident."))
    valid_until = models.DateField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["organisation", "position", "label"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "key"], name="catalog_contact_org_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.value}"
