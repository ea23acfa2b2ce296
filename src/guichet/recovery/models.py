"""Degraded mode and coming back: which status-board procedure governs each online function
(configuration), and the paper forms entered after an outage.

- ``OnlineGate``: "the online booking of the Wednesdays activity of the Ville follows the
  procedure *Inscriptions accueil de loisirs* of the status board". When that procedure's
  online channel is suspended (or disrupted, if the gate says so) in an active incident, the
  families' online function is closed; the counter keeps working. See ``gates.py``.
- ``PaperForm``: a booking form or a deposit receipt filled in on paper while the system was
  down, entered later with its original date, time and number. The number is the natural
  idempotency key: entering the same form twice records it once. Two *different* forms with the
  same number are a numbering duplicate: refused unless the agent confirms it, then kept as a
  second copy (``copy`` 2, 3...) and reported.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from guichet.bookings.models import Activity, Household
from guichet.catalog.models import Organisation, Procedure


class Function(models.TextChoices):
    BOOKING = "booking", _("Online booking")
    CANCELLATION = "cancellation", _("Online cancellation")
    PAYMENT = "payment", _("Online payment")


class OnlineGate(models.Model):
    """One online function (of one activity, or of every activity when ``activity`` is empty)
    follows one procedure of the status board."""

    class WhenDegraded(models.TextChoices):
        WARN = "warn", _("Stay open, show the message")
        CLOSE = "close", _("Close, like suspended")

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    function = models.CharField(max_length=20, choices=Function.choices)
    activity = models.ForeignKey(
        Activity, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        help_text=_("Empty: every activity of the organisation (payment has no activity)."),
    )
    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="+")
    when_degraded = models.CharField(max_length=10, choices=WhenDegraded.choices, default=WhenDegraded.WARN)

    class Meta:
        ordering = ["organisation", "function", "activity", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "function", "activity", "procedure"], name="recovery_gate_unique",
            ),
            models.UniqueConstraint(
                fields=["organisation", "function", "procedure"], condition=Q(activity__isnull=True),
                name="recovery_gate_all_activities_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.function} -> procedure #{self.procedure_id}"


class PaperForm(models.Model):
    class Kind(models.TextChoices):
        BOOKING = "booking", _("Booking form")
        DEPOSIT = "deposit", _("Deposit receipt")

    class State(models.TextChoices):
        ENTERED = "entered", _("Entered")
        VOID = "void", _("Void (spoiled or cancelled form)")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    series = models.CharField(
        max_length=20, help_text=_("The form book or receipt book, e.g. 'A' or '2024-ALSH'."),
    )
    number = models.PositiveIntegerField()
    copy = models.PositiveSmallIntegerField(default=1, help_text=_("2, 3...: another form with the same number."))
    state = models.CharField(max_length=10, choices=State.choices, default=State.ENTERED)
    received_at = models.DateTimeField(null=True, blank=True, help_text=_("When the form was handed in."))
    entered_at = models.DateTimeField()
    household = models.ForeignKey(Household, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    content_digest = models.CharField(max_length=64, help_text=_("What the form says, hashed: a retry matches it."))
    # The record made from the form: the booking basket (idempotency key "paper-form:<pk>") or the
    # deposit (billing.Payment, idempotency key "paper-form:<pk>"), found by that key.
    note = models.CharField(max_length=200, blank=True)
    actor_ref = models.CharField(max_length=80)

    class Meta:
        ordering = ["organisation", "kind", "series", "number", "copy"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "series", "number", "copy"], name="recovery_paper_number_unique",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="recovery_paper_number_positive"),
            models.CheckConstraint(condition=Q(copy__gte=1), name="recovery_paper_copy_positive"),
            models.CheckConstraint(
                condition=Q(state="void") | (Q(household__isnull=False) & Q(received_at__isnull=False)),
                name="recovery_paper_entered_has_household",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "kind", "entered_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.series}-{self.number}"

    @property
    def label(self) -> str:
        return f"{self.series}-{self.number}" + (f" ({self.copy})" if self.copy > 1 else "")

    @property
    def idempotency_key(self) -> str:
        return f"paper-form:{self.pk}"
