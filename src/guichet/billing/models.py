"""Childhood billing: dated tariffs, household quotients, crèche contracts, invoice runs,
invoices and their lines, the billed-item ledger, deposits, payments, refunds and allocations.

Invariants held by the database (see docs/adr for the reasoning):

- a booking is billed at most once: ``BilledItem.booking`` is the primary key; a crèche contract
  month at most once: UNIQUE(contract, month) on ``BilledCrecheMonth``;
- one draft invoice per run, household and period: UNIQUE(run, household, first_month);
- gapless numbers per organisation, series and year come from ``NumberSequence`` (row locked
  with SELECT ... FOR UPDATE in the finalising transaction), and are unique;
- a final invoice (and its lines) cannot be changed or deleted: database triggers (migration
  0002) refuse it on SQLite and PostgreSQL;
- amounts are integer cents, never negative; an invoice's total is the sum of its lines (set by
  one SQL statement, re-checked at finalisation, see ``services.invoice_run_finalise``);
- one counter action per idempotency key: UNIQUE(organisation, idempotency_key) on payments.

Balances are never stored: ``selectors.household_balance`` computes them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from guichet.bookings.models import Activity, Booking, Child, Household, Unit
from guichet.catalog.models import Organisation
from guichet.common.crypto import EncryptedIntegerField

# --- tariffs (dated configuration, loaded from a YAML file per organisation) -----------------


class TariffFile(models.Model):
    """The last tariff file loaded for an organisation (its text is kept for the record)."""

    organisation = models.OneToOneField(Organisation, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=200)
    digest = models.CharField(max_length=64)
    text = models.TextField()
    loaded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"tariffs of organisation {self.organisation_id}"


class QuotientBracket(models.Model):
    """A family-quotient bracket in force from ``valid_from`` (until the next set of brackets).
    A quotient ``q`` falls in the first bracket (by ``position``) with ``q <= upper``; the
    last bracket has no upper bound. ``is_default`` marks the bracket used when a household
    has no quotient (an anomaly the run reports)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateField()
    code = models.SlugField(max_length=20)
    label = models.CharField(max_length=80, blank=True)
    upper = models.PositiveIntegerField(null=True, blank=True, help_text=_("Highest quotient (euros) in the bracket."))
    position = models.PositiveSmallIntegerField()
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["organisation", "valid_from", "position"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "valid_from", "code"], name="billing_bracket_code_unique"),
            models.UniqueConstraint(fields=["organisation", "valid_from", "position"], name="billing_bracket_pos_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} from {self.valid_from}"


class ActivityTariff(models.Model):
    """The prices of one activity from ``valid_from`` (until the activity's next tariff).
    Penalties are added once per late cancellation / unjustified absence (0: none)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateField()
    late_cancellation_penalty_cents = models.PositiveIntegerField(default=0)
    absence_penalty_cents = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["activity", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["activity", "valid_from"], name="billing_activitytariff_unique"),
        ]

    def __str__(self) -> str:
        return f"tariff of activity {self.activity_id} from {self.valid_from}"


class UnitPrice(models.Model):
    """The price of one unit under one tariff: for a bracket (residents) or the non-resident
    grid (``resident=False``, ``bracket`` empty)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    tariff = models.ForeignKey(ActivityTariff, on_delete=models.CASCADE, related_name="prices")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    resident = models.BooleanField(default=True)
    bracket = models.SlugField(max_length=20, blank=True)
    price_cents = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tariff", "unit", "resident", "bracket"], name="billing_unitprice_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.unit_id}/{self.bracket or 'non-resident'}: {self.price_cents}"


class SiblingReduction(models.Model):
    """From ``valid_from``: a reduction of ``percent_bp`` (basis points, 1000 = 10 %) for the
    child of rank ``rank`` (and above, when it is the highest rank given) among a household's
    children billed for the same activity in the same month, eldest first. Empty ``activity``:
    every activity except the crèche (PSU has its own rule)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    valid_from = models.DateField()
    rank = models.PositiveSmallIntegerField()
    percent_bp = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "activity", "valid_from", "rank"],
                                    name="billing_sibling_unique"),
            models.CheckConstraint(condition=Q(rank__gte=2) & Q(percent_bp__lte=10000), name="billing_sibling_valid"),
        ]

    def __str__(self) -> str:
        return f"rank {self.rank}: -{self.percent_bp / 100}%"


class PsuRate(models.Model):
    """Crèche PSU parameters from ``valid_from``: hourly rate = monthly resources (clamped to
    [floor, ceiling]) x effort rate for the number of dependent children. ``effort_rates`` maps
    a number of children (as text, "1", "2"... the highest given applies above) to a rate in
    millionths (0.0619 % -> 619)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateField()
    floor_cents = models.PositiveIntegerField()
    ceiling_cents = models.PositiveIntegerField()
    effort_rates = models.JSONField()

    class Meta:
        ordering = ["activity", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["activity", "valid_from"], name="billing_psurate_unique"),
            models.CheckConstraint(condition=Q(floor_cents__lte=F("ceiling_cents")), name="billing_psurate_floor_ceiling"),
        ]

    def __str__(self) -> str:
        return f"PSU of activity {self.activity_id} from {self.valid_from}"


# --- household data used for pricing --------------------------------------------------------


class HouseholdQuotient(models.Model):
    """A household's family quotient (euros) and, for the crèche, monthly resources and number
    of dependent children, in force from ``valid_from``. A service month is priced with the
    row in force on its FIRST day (frozen for the month)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateField()
    # Income data, encrypted at rest (docs/adr/0011): only Python reads them, never SQL.
    quotient = EncryptedIntegerField()
    resources_cents = EncryptedIntegerField(null=True, blank=True)
    dependent_children = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=30, default="declared")
    recorded_at = models.DateTimeField()
    actor_ref = models.CharField(max_length=80)

    class Meta:
        ordering = ["household", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["household", "valid_from"], name="billing_quotient_unique"),
            models.CheckConstraint(
                condition=Q(dependent_children__isnull=True) | Q(dependent_children__gte=1),
                name="billing_quotient_children_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"quotient of household {self.household_id} from {self.valid_from}"


class CrecheContract(models.Model):
    """A crèche place: ``monthly_hours`` billed every month from ``first_month`` to
    ``last_month`` (1st of the month; open-ended when empty), at the PSU hourly rate."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="+")
    child = models.ForeignKey(Child, on_delete=models.PROTECT, related_name="+")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="+")
    first_month = models.DateField()
    last_month = models.DateField(null=True, blank=True)
    monthly_hours = models.DecimalField(max_digits=6, decimal_places=2)
    created_at = models.DateTimeField()
    actor_ref = models.CharField(max_length=80)

    class Meta:
        ordering = ["child", "first_month"]
        constraints = [
            models.CheckConstraint(condition=Q(monthly_hours__gt=0), name="billing_contract_hours_positive"),
            models.CheckConstraint(
                condition=Q(last_month__isnull=True) | Q(last_month__gte=F("first_month")),
                name="billing_contract_months_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"crèche contract #{self.pk}"


# --- numbering ------------------------------------------------------------------------------


class NumberSequence(models.Model):
    """The last number given in a series (invoice, credit note, receipt) for an organisation and
    a year. Locked with SELECT ... FOR UPDATE by whoever takes the next number, in the same
    transaction as the numbered row: numbers are gapless and never given twice."""

    class Series(models.TextChoices):
        INVOICE = "FAC", _("Invoice")
        CREDIT_NOTE = "AV", _("Credit note")
        RECEIPT = "REC", _("Receipt")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=4, choices=Series.choices)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "series", "year"], name="billing_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last}"


# --- runs -----------------------------------------------------------------------------------


class InvoiceRun(models.Model):
    """Billing of a range of months for a set of activities. Executed in chunks of households
    (each chunk one transaction, ``cursor`` = last household done), so a crash resumes where it
    stopped; then reviewed and finalised."""

    class Status(models.TextChoices):
        CREATED = "created", _("Created, not started")
        RUNNING = "running", _("Running")
        READY = "ready", _("Drafts ready for review")
        FINAL = "final", _("Finalised")
        CANCELLED = "cancelled", _("Cancelled")

    class Grouping(models.TextChoices):
        RUN = "run", _("One invoice per household for the whole run")
        MONTH = "month", _("One invoice per household and month")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    first_month = models.DateField()
    last_month = models.DateField()
    activities = models.ManyToManyField(Activity, related_name="+")
    grouping = models.CharField(max_length=10, choices=Grouping.choices, default=Grouping.RUN)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATED)
    idempotency_key = models.CharField(max_length=100)
    created_at = models.DateTimeField()
    actor_ref = models.CharField(max_length=80)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    finalised_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    # progress (the staff screen and the command line read these)
    households_total = models.PositiveIntegerField(default=0)
    households_done = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0, help_text=_("Last household id done."))
    invoices_count = models.PositiveIntegerField(default=0)
    lines_count = models.PositiveIntegerField(default=0)
    items_count = models.PositiveIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)
    anomalies_count = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="billing_run_idem_unique"),
            models.CheckConstraint(condition=Q(last_month__gte=F("first_month")), name="billing_run_months_ordered"),
            models.CheckConstraint(condition=Q(households_done__lte=F("households_total")),
                                   name="billing_run_progress_bounded"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.first_month:%Y-%m}..{self.last_month:%Y-%m}"


class RunAnomaly(models.Model):
    """Something to review before finalising: no quotient (default bracket used), no tariff
    (item left unbilled), justification window still open (item deferred)..."""

    class Kind(models.TextChoices):
        NO_QUOTIENT = "no_quotient", _("No family quotient: default bracket used")
        NO_TARIFF = "no_tariff", _("No tariff for this unit on this date: not billed")
        NO_RESOURCES = "no_resources", _("No resources for the crèche: PSU ceiling used")
        JUSTIFICATION_PENDING = "justification_pending", _("Justification still possible: not billed yet")
        HOUSEHOLD_CREDIT = "household_credit", _("Household still in credit after the invoice")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(InvoiceRun, on_delete=models.CASCADE, related_name="anomalies")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    household = models.ForeignKey(Household, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    key = models.CharField(max_length=120, help_text=_("What the anomaly is about, e.g. 'household:12:2024-09'."))
    count = models.PositiveIntegerField(default=1)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "kind", "pk"]
        constraints = [models.UniqueConstraint(fields=["run", "kind", "key"], name="billing_anomaly_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


# --- invoices and lines ---------------------------------------------------------------------


class Invoice(models.Model):
    """An invoice or a credit note (``kind``) of a household. Drafts belong to a run; a final
    one has a number and never changes (database triggers). Credit notes are final at once and
    point to the invoice they correct."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        FINAL = "final", _("Issued")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(InvoiceRun, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=30, null=True, blank=True)  # noqa: DJ001 - NULL until final (unique)
    first_month = models.DateField()
    last_month = models.DateField()
    total_cents = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    finalised_at = models.DateTimeField(null=True, blank=True)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    corrects = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes")
    reason = models.CharField(max_length=300, blank=True)
    rebill = models.BooleanField(default=False, help_text=_("Credit note that gives the items back to be billed again."))
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - NULLs never collide

    class Meta:
        ordering = ["household", "first_month", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], condition=Q(number__isnull=False),
                                    name="billing_invoice_number_unique"),
            models.UniqueConstraint(fields=["run", "household", "first_month"],
                                    condition=Q(kind="invoice") & Q(run__isnull=False),
                                    name="billing_invoice_one_per_run_household_period"),
            models.UniqueConstraint(fields=["organisation", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False), name="billing_invoice_idem_unique"),
            models.CheckConstraint(condition=Q(total_cents__gte=0), name="billing_invoice_total_positive"),
            models.CheckConstraint(condition=Q(last_month__gte=F("first_month")), name="billing_invoice_months_ordered"),
            models.CheckConstraint(
                condition=(Q(status="final") & Q(number__isnull=False) & Q(finalised_at__isnull=False))
                | (Q(status="draft") & Q(number__isnull=True)),
                name="billing_invoice_final_has_number",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", corrects__isnull=True) | Q(kind="credit_note", corrects__isnull=False),
                name="billing_creditnote_corrects_invoice",
            ),
        ]
        indexes = [models.Index(fields=["household", "status"]), models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return self.number or f"draft #{self.pk}"


class InvoiceLine(models.Model):
    """One line: a quantity of one unit of one activity for one child in one month at one unit
    price (``kind`` says why it is billed). ``amount_cents`` = round(quantity x unit price),
    half up, the only rounding point. Crèche lines: quantity in hours, unit price = PSU hourly
    rate."""

    class Kind(models.TextChoices):
        BOOKED = "booked", _("Booked sessions")
        LATE_CANCELLATION = "late_cancellation", _("Cancelled too late")
        UNJUSTIFIED_ABSENCE = "unjustified_absence", _("Absent without justification")
        LATE_PENALTY = "late_penalty", _("Late-cancellation penalty")
        ABSENCE_PENALTY = "absence_penalty", _("Absence penalty")
        CRECHE_CONTRACT = "creche_contract", _("Crèche contract hours")
        CORRECTION = "correction", _("Correction")

    # Lines are written by the hundred thousand in a catch-up: the references to the bookings
    # module's rows (activity, unit, child) and to the organisation are not checked by the
    # database (each check locks the referenced row); they are ids the run just read, of rows
    # that are never deleted. The invoice reference is checked.
    organisation = models.ForeignKey(Organisation, on_delete=models.DO_NOTHING, related_name="+",
                                     db_constraint=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    month = models.DateField(help_text=_("First day of the month of service."))
    kind = models.CharField(max_length=20, choices=Kind.choices)
    activity = models.ForeignKey(Activity, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+",
                                 db_constraint=False)
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+",
                             db_constraint=False)
    child = models.ForeignKey(Child, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+",
                              db_constraint=False)
    tariff_date = models.DateField(null=True, blank=True, help_text=_("valid_from of the tariff applied."))
    bracket = models.CharField(max_length=20, blank=True)
    sibling_rank = models.PositiveSmallIntegerField(default=1)
    quantity = models.DecimalField(max_digits=9, decimal_places=2)
    unit_price_cents = models.PositiveIntegerField()
    amount_cents = models.BigIntegerField()
    label = models.CharField(max_length=200, blank=True)
    corrects_line = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["invoice", "month", "child", "activity", "kind", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="billing_line_amount_positive"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="billing_line_quantity_positive"),
            models.UniqueConstraint(
                fields=["invoice", "month", "kind", "child", "activity", "unit", "tariff_date", "unit_price_cents"],
                condition=Q(kind__in=["booked", "late_cancellation", "unjustified_absence"]),
                name="billing_line_one_per_group",
            ),
        ]

    def __str__(self) -> str:
        return f"line #{self.pk}"


class BilledItem(models.Model):
    """A booking that is on an invoice line. The booking is the PRIMARY KEY: no booking can be
    billed twice, whatever the runs, crashes and re-runs. A credit note with re-billing moves
    the rows to ``ReleasedItem`` (history) so the bookings can be billed again.

    This is the big table (one row per booking billed: millions in a catch-up). Its foreign keys
    have no database constraint (``db_constraint=False``): PostgreSQL checks each one with a
    row lock on the referenced row, which made a 6-million-item catch-up spend most of its time
    locking every booking (docs/adr, billing). The ids are written by one INSERT ... SELECT that
    joins the bookings and the lines of the same transaction, and bookings are never deleted
    (cancelling is a status)."""

    booking = models.OneToOneField(Booking, on_delete=models.DO_NOTHING, primary_key=True, related_name="+",
                                   db_constraint=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.DO_NOTHING, related_name="+", db_index=False,
                                     db_constraint=False)
    line = models.ForeignKey(InvoiceLine, on_delete=models.DO_NOTHING, related_name="items", db_constraint=False,
                             db_index=False)  # read by invoice (indexed), never by line alone
    # not indexed either: an index on the invoice, written in booking order, doubled the cost of
    # writing the ledger (ADR 13); an invoice's rows are found through its household's bookings
    # (``services.ledger_rows``)
    invoice = models.ForeignKey(Invoice, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                                db_index=False)

    def __str__(self) -> str:
        return f"billed booking {self.booking_id}"


class ReleasedItem(models.Model):
    """History: a booking that was billed on ``line`` then given back by ``credit_note``."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="+")
    line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="+")
    credit_note = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["booking", "line"], name="billing_released_unique")]

    def __str__(self) -> str:
        return f"released booking {self.booking_id}"


class BilledCrecheMonth(models.Model):
    """A crèche contract month that is on an invoice line: UNIQUE(contract, month)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey(CrecheContract, on_delete=models.PROTECT, related_name="+")
    month = models.DateField()
    line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+")
    released_by = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contract", "month"], condition=Q(released_by__isnull=True),
                                    name="billing_creche_month_once"),
        ]

    def __str__(self) -> str:
        return f"contract {self.contract_id} {self.month:%Y-%m}"


# --- money in and out -------------------------------------------------------------------------


class Payment(models.Model):
    """Money received from (deposit, payment) or given back to (refund) a household, with its
    receipt number. A deposit is taken before any invoice exists; a payment names the invoice it
    pays. What is not allocated stays as the household's credit, applied oldest first when
    invoices are finalised."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Deposit")
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")

    class Method(models.TextChoices):
        CASH = "cash", _("Cash")
        CHEQUE = "cheque", _("Cheque")
        CARD = "card", _("Card at the counter")
        TRANSFER = "transfer", _("Bank transfer")
        DIRECT_DEBIT = "direct_debit", _("Direct debit")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    method = models.CharField(max_length=15, choices=Method.choices)
    amount_cents = models.BigIntegerField()
    receipt_number = models.CharField(max_length=30)
    received_at = models.DateTimeField()
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="payments")
    reference = models.CharField(max_length=60, blank=True, help_text=_("Cheque number, card receipt..."))
    idempotency_key = models.CharField(max_length=100)
    channel = models.CharField(max_length=20, default="counter")
    actor_ref = models.CharField(max_length=80)

    class Meta:
        ordering = ["household", "received_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="billing_payment_amount_positive"),
            models.UniqueConstraint(fields=["organisation", "receipt_number"], name="billing_payment_receipt_unique"),
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="billing_payment_idem_unique"),
            models.CheckConstraint(condition=Q(kind="payment", invoice__isnull=False) | ~Q(kind="payment"),
                                   name="billing_payment_names_invoice"),
        ]
        indexes = [models.Index(fields=["household", "kind"])]

    def __str__(self) -> str:
        return self.receipt_number


class Allocation(models.Model):
    """Part of a source of credit (money received, or a credit note) used to settle an invoice
    or paid back by a refund. A source's allocations never exceed its amount (checked under a
    lock on the household's sources; see services)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="allocations")
    credit_note = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="allocations")
    refund = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    amount_cents = models.BigIntegerField()
    created_at = models.DateTimeField()
    run = models.ForeignKey(InvoiceRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="billing_allocation_positive"),
            models.CheckConstraint(
                condition=(Q(payment__isnull=False) & Q(credit_note__isnull=True))
                | (Q(payment__isnull=True) & Q(credit_note__isnull=False)),
                name="billing_allocation_one_source",
            ),
            models.CheckConstraint(
                condition=(Q(invoice__isnull=False) & Q(refund__isnull=True))
                | (Q(invoice__isnull=True) & Q(refund__isnull=False)),
                name="billing_allocation_one_target",
            ),
            models.UniqueConstraint(fields=["payment", "invoice"], condition=Q(payment__isnull=False, invoice__isnull=False),
                                    name="billing_allocation_payment_invoice_once"),
            models.UniqueConstraint(fields=["payment", "refund"], condition=Q(payment__isnull=False, refund__isnull=False),
                                    name="billing_allocation_payment_refund_once"),
            models.UniqueConstraint(fields=["credit_note", "invoice"],
                                    condition=Q(credit_note__isnull=False, invoice__isnull=False),
                                    name="billing_allocation_credit_invoice_once"),
            models.UniqueConstraint(fields=["credit_note", "refund"],
                                    condition=Q(credit_note__isnull=False, refund__isnull=False),
                                    name="billing_allocation_credit_refund_once"),
        ]

    def __str__(self) -> str:
        return f"allocation #{self.pk}: {self.amount_cents}"
