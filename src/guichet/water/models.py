"""Water and sanitation: customers, delivery points, meters, contracts, readings, dated tariffs,
payment schedules and their instalments, invoices, SEPA mandates and direct-debit runs.

Thin models: the rules live in ``rules.py``, the writes in ``services.py``. Every row carries
its organisation (tenancy). Invariants the database keeps: one open contract per delivery
point, one reading per meter and day, one schedule per contract and year, one regularisation
invoice per schedule, an instalment in at most one debit file ever, amounts never negative
where they cannot be, an invoice's total = its amount excluding VAT + its VAT.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from guichet.catalog.models import Organisation
from guichet.common.crypto import EncryptedBinaryField, EncryptedTextField

from .rules import mask_iban


class Creditor(models.Model):
    """The organisation as SEPA creditor (one per organisation)."""

    organisation = models.OneToOneField(Organisation, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=70)
    creditor_id = models.CharField(max_length=35)  # ICS, validated with stdnum.eu.at_02
    iban = EncryptedTextField(max_length=34)  # encrypted at rest (docs/adr/0011)
    bic = EncryptedTextField(max_length=11, blank=True)
    instalment_day = models.PositiveSmallIntegerField(default=10)
    instalment_count = models.PositiveSmallIntegerField(default=10)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(instalment_day__gte=1, instalment_day__lte=28),
                                   name="water_creditor_day_range"),
            models.CheckConstraint(condition=Q(instalment_count__gte=1, instalment_count__lte=12),
                                   name="water_creditor_count_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    class Billing(models.TextChoices):
        MONTHLY = "monthly", _("Monthly instalments")
        PERIODIC = "periodic", _("Periodic invoices")

    class Credit(models.TextChoices):
        CARRY_OVER = "carry_over", _("Carried over to the next schedule")
        REFUND = "refund", _("Refunded")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=20)
    name = models.CharField(max_length=140)
    address = models.CharField(max_length=200, blank=True)
    billing = models.CharField(max_length=10, choices=Billing.choices, default=Billing.PERIODIC)
    credit_preference = models.CharField(max_length=12, choices=Credit.choices, default=Credit.CARRY_OVER)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="water_customer_ref_unique"),
            models.CheckConstraint(condition=Q(billing__in=["monthly", "periodic"]), name="water_customer_billing_valid"),
        ]

    def __str__(self) -> str:
        return self.reference


class DeliveryPoint(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=20)
    address = models.CharField(max_length=200)
    sanitation = models.BooleanField(default=True, help_text=_("Connected to the public sewer."))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="water_point_ref_unique"),
        ]

    def __str__(self) -> str:
        return self.reference


class Meter(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    delivery_point = models.ForeignKey(DeliveryPoint, on_delete=models.PROTECT, related_name="meters")
    serial = models.CharField(max_length=30)
    diameter = models.PositiveSmallIntegerField(help_text=_("Nominal diameter in mm."))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "serial"], name="water_meter_serial_unique"),
            models.CheckConstraint(condition=Q(diameter__gte=10, diameter__lte=300), name="water_meter_diameter_range"),
        ]

    def __str__(self) -> str:
        return self.serial


class Contract(models.Model):
    """A customer supplied at a delivery point from ``start`` (move-in) to ``end`` (move-out,
    exclusive; empty while it runs), with the index read on each of those days."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts")
    delivery_point = models.ForeignKey(DeliveryPoint, on_delete=models.PROTECT, related_name="contracts")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="contracts")
    start = models.DateField()
    start_index = models.PositiveIntegerField()
    end = models.DateField(null=True, blank=True)
    end_index = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery_point"], condition=Q(end__isnull=True),
                                    name="water_contract_one_open_per_point"),
            models.CheckConstraint(condition=Q(end__isnull=True) | Q(end__gt=F("start")),
                                   name="water_contract_end_after_start"),
            models.CheckConstraint(condition=Q(end__isnull=True, end_index__isnull=True)
                                   | Q(end__isnull=False, end_index__isnull=False),
                                   name="water_contract_end_with_index"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.delivery_point_id}"


class Reading(models.Model):
    class Kind(models.TextChoices):
        ACTUAL = "actual", _("Actual reading")
        ESTIMATED = "estimated", _("Estimate")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="readings",
                              db_index=False)  # indexed by the (meter, date) constraint
    date = models.DateField()
    index = models.PositiveIntegerField(help_text=_("m³"))
    kind = models.CharField(max_length=10, choices=Kind.choices)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["meter", "date"]
        constraints = [
            models.UniqueConstraint(fields=["meter", "date"], name="water_reading_one_per_day"),
            models.CheckConstraint(condition=Q(kind__in=["actual", "estimated"]), name="water_reading_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.date} {self.index}"


class Tariff(models.Model):
    """A dated tariff: in force from ``valid_from`` until the next one. ``definition`` is read by
    ``rules.parse_tariff`` (headings, VAT, subscriptions per diameter, bands)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateField()
    definition = models.JSONField()

    class Meta:
        ordering = ["organisation", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "valid_from"], name="water_tariff_date_unique"),
        ]

    def __str__(self) -> str:
        return f"tariff from {self.valid_from}"


class Schedule(models.Model):
    """A monthly payer's payment schedule for one year (échéancier)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Running")
        REGULARISED = "regularised", _("Regularised")
        CLOSED = "closed", _("Closed at move-out")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="schedules")
    year = models.PositiveSmallIntegerField()
    basis = models.PositiveIntegerField(help_text=_("The bill the schedule is computed from, in cents."))
    credit_applied = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contract", "year"], name="water_schedule_one_per_year"),
            models.CheckConstraint(condition=Q(status__in=["open", "regularised", "closed"]),
                                   name="water_schedule_status_valid"),
        ]

    def __str__(self) -> str:
        return f"schedule {self.year} of contract {self.contract_id}"


class Invoice(models.Model):
    """An issued invoice (immutable). ``lines`` and ``vat`` are the pure bill (``rules.Bill``);
    ``deducted`` are the instalments actually collected that it settles; ``balance`` = total −
    deducted (negative: a credit)."""

    class Kind(models.TextChoices):
        PERIODIC = "periodic", _("Periodic invoice")
        REGULARISATION = "regularisation", _("Annual regularisation")
        FINAL = "final", _("Final invoice (move-out)")

    class CreditAction(models.TextChoices):
        NONE = "", _("None")
        CARRY_OVER = "carry_over", _("Carried over to the next schedule")
        REFUND = "refund", _("To be refunded")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # indexed by the (organisation, number) constraint
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="invoices")
    schedule = models.OneToOneField(Schedule, on_delete=models.PROTECT, null=True, blank=True, related_name="invoice")
    number = models.CharField(max_length=30)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    issued_on = models.DateField()
    period_start = models.DateField()
    period_end = models.DateField()
    start_index = models.PositiveIntegerField()
    end_index = models.PositiveIntegerField()
    end_reading_date = models.DateField()
    lines = models.JSONField()
    vat = models.JSONField()
    total_excl_vat = models.IntegerField()
    total_vat = models.IntegerField()
    total = models.IntegerField()
    deducted = models.IntegerField(default=0)
    balance = models.IntegerField()
    credit_action = models.CharField(max_length=12, choices=CreditAction.choices, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["organisation", "number"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="water_invoice_number_unique"),
            models.CheckConstraint(condition=Q(total=F("total_excl_vat") + F("total_vat")), name="water_invoice_total_sum"),
            models.CheckConstraint(condition=Q(balance=F("total") - F("deducted")), name="water_invoice_balance"),
            models.CheckConstraint(condition=Q(deducted__gte=0), name="water_invoice_deducted_positive"),
            models.CheckConstraint(condition=Q(period_end__gt=F("period_start")), name="water_invoice_period"),
            models.CheckConstraint(condition=Q(kind__in=["periodic", "regularisation", "final"]),
                                   name="water_invoice_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.number


class InvoiceCounter(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    prefix = models.CharField(max_length=10)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "prefix"], name="water_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} at {self.last}"


class Instalment(models.Model):
    """Money expected on a date: an instalment of a schedule, the balance of an invoice, or one
    part of an instalment plan for that balance."""

    class State(models.TextChoices):
        PLANNED = "planned", _("Planned")
        COLLECTED = "collected", _("Collected by direct debit")
        NOT_COLLECTED = "not_collected", _("Not collected (service interruption)")
        REJECTED = "rejected", _("Returned by the bank")
        CANCELLED = "cancelled", _("Cancelled")

    # Indexed by water_inst_due_idx (organisation first) and the (schedule, number) constraint:
    # no index of their own, so the runs' 200,000-row inserts maintain fewer indexes.
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+", db_index=False)
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, null=True, blank=True, related_name="instalments",
                                 db_index=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="instalments")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    amount = models.PositiveIntegerField()
    state = models.CharField(max_length=14, choices=State.choices, default=State.PLANNED)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["due_date", "number"]
        indexes = [models.Index(fields=["organisation", "state", "due_date"], name="water_inst_due_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(schedule__isnull=False, invoice__isnull=True)
                                   | Q(schedule__isnull=True, invoice__isnull=False),
                                   name="water_instalment_one_parent"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="water_instalment_amount_positive"),
            models.CheckConstraint(
                condition=Q(state__in=["planned", "collected", "not_collected", "rejected", "cancelled"]),
                name="water_instalment_state_valid"),
            models.UniqueConstraint(fields=["schedule", "number"], name="water_instalment_schedule_number"),
        ]

    def __str__(self) -> str:
        return f"{self.due_date} {self.amount}"


class Mandate(models.Model):
    """A SEPA direct-debit mandate (RUM). The IBAN is personal data: shown masked, never logged,
    encrypted at rest."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="mandates")
    reference = models.CharField(max_length=35)
    signed_on = models.DateField()
    iban = EncryptedTextField(max_length=34)  # encrypted at rest (docs/adr/0011)
    bic = EncryptedTextField(max_length=11, blank=True)
    one_off = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    first_debit_on = models.DateField(null=True, blank=True)
    last_debit_on = models.DateField(null=True, blank=True)
    revoked_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="water_mandate_ref_unique"),
            models.UniqueConstraint(fields=["customer"], condition=Q(status="active"),
                                    name="water_mandate_one_active_per_customer"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def masked_iban(self) -> str:
        return mask_iban(self.iban)


class DebitRun(models.Model):
    """A pain.008 file: the instalments due by a date, presented for collection."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(max_length=80)
    collection_date = models.DateField()
    due_until = models.DateField()
    message_id = models.CharField(max_length=35)
    count = models.PositiveIntegerField()
    control_sum = models.PositiveBigIntegerField()
    xml = EncryptedBinaryField()  # debtors' names and IBANs: encrypted at rest
    anomalies = models.JSONField(default=list)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="water_debitrun_key_unique"),
        ]

    def __str__(self) -> str:
        return self.message_id


class DebitLine(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(DebitRun, on_delete=models.PROTECT, related_name="lines")
    instalment = models.ForeignKey(Instalment, on_delete=models.PROTECT, related_name="debit_lines",
                                   db_index=False)  # indexed by the unique constraint
    mandate = models.ForeignKey(Mandate, on_delete=models.PROTECT, related_name="+")
    amount = models.PositiveIntegerField()
    sequence_type = models.CharField(max_length=4)
    end_to_end_id = models.CharField(max_length=35)
    rejected_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.CharField(max_length=4, blank=True)

    class Meta:
        constraints = [
            # An instalment is presented in at most one debit file, ever: never collected twice.
            models.UniqueConstraint(fields=["instalment"], name="water_debitline_instalment_once"),
            models.UniqueConstraint(fields=["organisation", "end_to_end_id"], name="water_debitline_e2e_unique"),
            models.CheckConstraint(condition=Q(sequence_type__in=["FRST", "RCUR", "FNAL", "OOFF"]),
                                   name="water_debitline_seqtype_valid"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="water_debitline_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.end_to_end_id


class RegularisationRun(models.Model):
    """One annual regularisation over an organisation: what it did, for the summary screen."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    issued_on = models.DateField()
    summary = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"regularisation {self.year}"
