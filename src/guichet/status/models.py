"""The public status board: incidents, availability per procedure and channel, targets,
advisories, and the changesets through which editors publish them.

Nothing here is typed twice: a service's overall state is derived from its procedures'
availability rows (``guichet.status.rules.rollup``); a service with no row works normally.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from guichet.catalog.models import Channel, ContactPoint, Organisation, Portal, Procedure, Service
from guichet.common.i18n import BilingualMixin


class State(models.TextChoices):
    NORMAL = "normal", _("Works normally")
    DEGRADED = "degraded", _("Disrupted")
    SUSPENDED = "suspended", _("Suspended")


ANY_CHANNEL = "any"
CHANNEL_CHOICES = [(ANY_CHANNEL, _("All channels")), *Channel.choices]


class Incident(BilingualMixin, models.Model):
    class Nature(models.TextChoices):
        CYBERATTACK = "cyberattack", _("Cyberattack")
        NETWORK = "network", _("Network or telephone outage")
        POWER = "power", _("Power cut")
        SOFTWARE = "software", _("Software failure")
        DISASTER = "disaster", _("Disaster")
        OTHER = "other", _("Other")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="incidents")
    slug = models.SlugField()
    title = models.CharField(max_length=200)
    title_en = models.CharField(max_length=200, blank=True)
    nature = models.CharField(max_length=20, choices=Nature.choices, default=Nature.OTHER)
    summary = models.TextField(blank=True)
    summary_en = models.TextField(blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="status_incident_org_slug_unique"),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="status_incident_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def active(self) -> bool:
        return self.ended_at is None


class IncidentUpdate(BilingualMixin, models.Model):
    """A dated public update: the incident's timeline."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    key = models.SlugField(help_text=_("Identifier used in notice files."))
    published_at = models.DateTimeField()
    body = models.TextField()
    body_en = models.TextField(blank=True)

    class Meta:
        ordering = ["-published_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "key"], name="status_update_incident_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.incident} @ {self.published_at:%Y-%m-%d}"


class AffectedService(BilingualMixin, models.Model):
    """A service listed on an incident, with its own short headline ("pas de facturation possible")."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="affected")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="+")
    headline = models.CharField(max_length=300, blank=True)
    headline_en = models.CharField(max_length=300, blank=True)
    details = models.TextField(blank=True)
    details_en = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["incident", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "service"], name="status_affected_unique")
        ]

    def __str__(self) -> str:
        return f"{self.service} in {self.incident}"


class Availability(BilingualMixin, models.Model):
    """How one procedure can be done through one channel during an incident."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="availabilities")
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="availabilities")
    channel = models.CharField(max_length=20, choices=CHANNEL_CHOICES, default=ANY_CHANNEL)
    channel_label = models.CharField(max_length=120, blank=True, help_text=_("e.g. Espace Famille, COMEDEC"))
    channel_label_en = models.CharField(max_length=120, blank=True)
    state = models.CharField(max_length=12, choices=State.choices)
    explanation = models.TextField(blank=True)
    explanation_en = models.TextField(blank=True)
    instead = models.TextField(blank=True, help_text=_("What to do instead."))
    instead_en = models.TextField(blank=True)
    since = models.DateField(null=True, blank=True)
    contacts = models.ManyToManyField(ContactPoint, blank=True, related_name="+")
    position = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["incident", "procedure__service", "procedure__position", "position", "pk"]
        verbose_name_plural = "availabilities"
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "procedure", "channel"], name="status_availability_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.procedure} / {self.channel}: {self.state}"


class RestorationTarget(BilingualMixin, models.Model):
    """When a service (or one procedure) should be back. Append-only: the latest row is current,
    earlier rows are the revision history shown to the public."""

    class Precision(models.TextChoices):
        EXACT = "exact", _("Exact date")
        PERIOD = "period", _("Approximate period")
        UNKNOWN = "unknown", _("No date yet")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="targets")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="+")
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    precision = models.CharField(max_length=10, choices=Precision.choices)
    earliest = models.DateField(null=True, blank=True)
    latest = models.DateField(null=True, blank=True)
    text = models.CharField(max_length=200, blank=True, help_text=_("e.g. « dans le courant de l'été »"))
    text_en = models.CharField(max_length=200, blank=True)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["incident", "service", "procedure", "-recorded_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(earliest__isnull=True) | models.Q(latest__isnull=True)
                | models.Q(latest__gte=models.F("earliest")),
                name="status_target_period_ordered",
            ),
            models.CheckConstraint(
                condition=~models.Q(precision="exact") | models.Q(earliest__isnull=False),
                name="status_target_exact_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service}: {self.text or self.earliest}"


class Advisory(BilingualMixin, models.Model):
    class Kind(models.TextChoices):
        PHISHING = "phishing", _("Phishing warning")
        DATA_PROTECTION = "data_protection", _("Personal data")
        RENEW_REQUESTS = "renew_requests", _("Requests to renew")
        EVENT_CHANGE = "event_change", _("Event changed or cancelled")
        INFORMATION = "information", _("Information")

    class Audience(models.TextChoices):
        EVERYONE = "everyone", _("Everyone")
        RESIDENTS = "residents", _("Residents")
        FAMILIES = "families", _("Families")
        SENIORS = "seniors", _("Seniors")
        BUSINESSES = "businesses", _("Businesses and professionals")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="advisories")
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="advisories")
    key = models.SlugField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.EVERYONE)
    title = models.CharField(max_length=200)
    title_en = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    body_en = models.TextField(blank=True)
    published_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-published_at"]
        verbose_name_plural = "advisories"
        constraints = [
            models.UniqueConstraint(fields=["organisation", "key"], name="status_advisory_org_key_unique")
        ]

    def __str__(self) -> str:
        return self.title


class ChangeSet(models.Model):
    """A draft of changes to the public page, published at once (after approval if required).

    ``operations`` is a list of ``{"op": name, ...arguments}``, the same operations a notice
    file is turned into (see ``guichet.status.operations``).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING = "pending", _("Awaiting approval")
        PUBLISHED = "published", _("Published")
        REJECTED = "rejected", _("Rejected")
        DISCARDED = "discarded", _("Discarded")

    portal = models.ForeignKey(Portal, on_delete=models.PROTECT, related_name="changesets")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    author_ref = models.CharField(max_length=80)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    operations = models.JSONField(default=list)
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - NULLs never collide in the unique constraint
    # Idempotency keys of the additions made to this draft (a form submitted twice adds once).
    append_keys = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["portal", "idempotency_key"], name="status_changeset_idem_unique")
        ]

    def __str__(self) -> str:
        return self.title


class Subscription(models.Model):
    """An e-mail subscription to a portal's updates (all services, or one). Double opt-in."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="subscriptions")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    email = models.EmailField()
    language = models.CharField(max_length=5, default="fr")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["portal", "service", "email"], name="status_subscription_unique"),
            models.UniqueConstraint(
                fields=["portal", "email"], condition=models.Q(service__isnull=True),
                name="status_subscription_all_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"subscription #{self.pk}"
