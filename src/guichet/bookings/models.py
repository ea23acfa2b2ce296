"""The family portal: households, children, activities, sessions with capacities, bookings,
waiting lists, registration windows, justifications and attendance.

Capacity lives in ``SessionPart`` rows (one per part of the day an activity has: morning, meal,
afternoon; or a single "day" part for holiday full days). A unit (full day, morning + meal...)
consumes one place in each of its parts. ``booked <= capacity`` is a database constraint: the
backstop under any concurrency, on SQLite and PostgreSQL alike.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from guichet.catalog.models import Organisation
from guichet.common.crypto import EncryptedTextField
from guichet.common.i18n import BilingualMixin


class Activity(BilingualMixin, models.Model):
    class Kind(models.TextChoices):
        LEISURE_WEDNESDAY = "leisure_wednesday", _("Leisure centre, Wednesdays")
        LEISURE_HOLIDAYS = "leisure_holidays", _("Leisure centre, school holidays")
        CATERING = "catering", _("School catering")
        AFTER_SCHOOL = "after_school", _("After-school care")
        CRECHE = "creche", _("Crèche")

    class WaitlistMode(models.TextChoices):
        AUTOMATIC = "automatic", _("A freed place is offered automatically")
        AGENT = "agent", _("An agent offers freed places")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="activities")
    slug = models.SlugField()
    name = models.CharField(max_length=160)
    name_en = models.CharField(max_length=160, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Parts of the day whose capacity is counted, e.g. ["morning", "meal", "afternoon"] or ["day"].
    parts = models.JSONField(default=list)
    # Deadline rules in the language of guichet.bookings.deadlines, e.g. "sunday before at 23:59".
    booking_rule = models.CharField(max_length=120)
    cancellation_rule = models.CharField(max_length=120)
    justification_days = models.PositiveIntegerField(
        default=8, help_text=_("Days after a late cancellation or absence to hand in a justification.")
    )
    waitlist_mode = models.CharField(max_length=10, choices=WaitlistMode.choices, default=WaitlistMode.AUTOMATIC)
    offer_hours = models.PositiveIntegerField(default=48, help_text=_("Hours a family has to accept a freed place."))
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["organisation", "position", "name"]
        verbose_name_plural = "activities"
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="bookings_activity_org_slug_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Unit(BilingualMixin, models.Model):
    """What a family books: full day, morning + meal, meal + afternoon, meal only, a slot..."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="units")
    code = models.SlugField()
    name = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120, blank=True)
    parts = models.JSONField(default=list, help_text=_("Parts of the day this unit takes a place in."))
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["activity", "position"]
        constraints = [models.UniqueConstraint(fields=["activity", "code"], name="bookings_unit_activity_code_unique")]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """A centre (accueil de loisirs, school canteen, crèche)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="sites")
    slug = models.SlugField()
    name = models.CharField(max_length=160)
    address = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["organisation", "name"]
        constraints = [models.UniqueConstraint(fields=["organisation", "slug"], name="bookings_site_org_slug_unique")]

    def __str__(self) -> str:
        return self.name


class Session(models.Model):
    """One activity at one site on one day."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="sessions")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="sessions")
    date = models.DateField()
    closed = models.BooleanField(default=False, help_text=_("Closed (strike, works...): no booking."))

    class Meta:
        ordering = ["date", "site"]
        constraints = [
            models.UniqueConstraint(fields=["activity", "site", "date"], name="bookings_session_unique")
        ]
        indexes = [models.Index(fields=["activity", "date"])]

    def __str__(self) -> str:
        return f"{self.activity} — {self.site} — {self.date}"


class SessionPart(models.Model):
    """The places of one part of the day of a session. ``booked`` never exceeds ``capacity``."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="parts")
    part = models.SlugField()
    capacity = models.PositiveIntegerField()
    booked = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["session", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["session", "part"], name="bookings_sessionpart_unique"),
            models.CheckConstraint(condition=Q(booked__lte=F("capacity")), name="bookings_sessionpart_no_overbooking"),
            models.CheckConstraint(condition=Q(booked__gte=0), name="bookings_sessionpart_booked_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.session} / {self.part}: {self.booked}/{self.capacity}"


class Household(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="households")
    reference = models.CharField(max_length=30, help_text=_("The family's file number."))
    display_name = models.CharField(max_length=120)
    resident = models.BooleanField(default=True)
    email = models.EmailField(blank=True)
    postal_address = models.TextField(
        _("postal address"), blank=True, default="",
        help_text=_("Printed on invoices: street, then postcode and town, one per line (at most 5 lines)."),
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="bookings_household_ref_unique")
        ]

    def __str__(self) -> str:
        return f"household {self.reference}"


class Guardian(models.Model):
    """A parent's account, allowed to act for a household."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="guardians")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guardianships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["household", "user"], name="bookings_guardian_unique")]
        # An account's first household (every signed-in family request reads it with its
        # session): one index probe, whatever the planner's statistics say.
        indexes = [models.Index(fields=["user", "id"], name="bookings_guardian_user_first")]

    def __str__(self) -> str:
        return f"guardian #{self.pk}"


class Child(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="children")
    first_name = models.CharField(max_length=80)
    birth_date = models.DateField()
    school = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["household", "birth_date"]
        verbose_name_plural = "children"

    def __str__(self) -> str:
        return f"child #{self.pk}"


class RegistrationWindow(models.Model):
    """Bookings for sessions between ``first_date`` and ``last_date`` open at a precise minute
    (``opens_at``), possibly earlier for residents (``residents_open_at``)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="windows")
    first_date = models.DateField()
    last_date = models.DateField()
    opens_at = models.DateTimeField()
    residents_open_at = models.DateTimeField(null=True, blank=True)
    closes_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["activity", "first_date"]
        constraints = [
            models.CheckConstraint(condition=Q(last_date__gte=F("first_date")), name="bookings_window_dates_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.activity}: {self.first_date}–{self.last_date} from {self.opens_at}"


class Basket(models.Model):
    """One request of a family: several days, several children. Receipt order is ``seq``."""

    class Mode(models.TextChoices):
        ALL_OR_NOTHING = "all_or_nothing", _("All or nothing")
        PARTIAL = "partial", _("What is available, the rest on the waiting list")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received, in line")
        DONE = "done", _("Answered")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="baskets")
    idempotency_key = models.CharField(max_length=100)
    mode = models.CharField(max_length=20, choices=Mode.choices)
    items = models.JSONField(help_text=_("Requested [child, session, unit] triples."))
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    result = models.JSONField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    channel = models.CharField(max_length=20, default="portal")
    actor_ref = models.CharField(max_length=80)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["household", "idempotency_key"], name="bookings_basket_idem_unique")
        ]
        indexes = [
            models.Index(fields=["status", "id"]),
            # The line (what each drain round reads first): only the baskets still received, so
            # the round reads the head of its organisation's line, never the answered ones, even
            # on a new database whose statistics do not know the table has grown.
            models.Index(fields=["organisation", "id"], condition=models.Q(status="received"),
                         name="bookings_basket_in_line"),
        ]

    def __str__(self) -> str:
        return f"basket #{self.pk}"


class Booking(models.Model):
    """A child's place in a session. ``activity`` and ``date`` repeat the session's so that one
    partial unique index keeps a child in one place at a time: at most one active booking per
    child, activity and day across every site.

    Two *different* activities on the same day are allowed on purpose: school catering and
    after-school care, or Wednesday morning school + catering + the leisure centre's "meal +
    afternoon", are the normal school day. The platform does not know the hours of each
    activity's parts, so it cannot tell an overlap from a sequence. Two offers that run at the
    same time of day (two leisure programmes on the same Wednesday, say) belong in ONE activity
    with several units or sites: then the constraint keeps the child in one of them."""

    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        CANCELLED = "cancelled", _("Cancelled")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="bookings")
    child = models.ForeignKey(Child, on_delete=models.PROTECT, related_name="bookings")
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="bookings")
    # The session's activity and date, copied here so that the database can refuse a second
    # active booking of the same child for the same activity on the same day at another site.
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="+")
    date = models.DateField()
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    basket = models.ForeignKey(Basket, on_delete=models.SET_NULL, null=True, blank=True, related_name="bookings")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOOKED)
    booked_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Cancelled after the deadline: stays billable unless justified in time.
    late = models.BooleanField(default=False)
    after_deadline = models.BooleanField(default=False, help_text=_("Booked by an agent after the deadline."))
    # Typed by an agent (a late booking or cancellation): may tell a child's illness. Encrypted at rest.
    reason = EncryptedTextField(max_length=300, blank=True)
    channel = models.CharField(max_length=20, default="portal")
    actor_ref = models.CharField(max_length=80)

    class Meta:
        ordering = ["session__date", "pk"]
        constraints = [
            # A child is in one place at a time: at most one active booking per activity and day,
            # whatever the site (it also covers "once per session": a session is an activity at a
            # site on a day). Different activities on the same day are allowed (see the docstring).
            models.UniqueConstraint(
                fields=["child", "activity", "date"], condition=Q(status="booked"),
                name="bookings_one_active_per_child_activity_day",
            ),
        ]
        indexes = [models.Index(fields=["session", "status"])]

    def __str__(self) -> str:
        return f"booking #{self.pk}"

    def save(self, *args, **kwargs):
        # The services set ``activity`` and ``date`` themselves (bulk inserts skip ``save``);
        # this keeps any other writer (fixtures, factories) consistent with the session.
        if self.session_id is not None and (self.activity_id is None or self.date is None):
            session = self.session
            self.activity_id, self.date = session.activity_id, session.date
        super().save(*args, **kwargs)


class WaitlistEntry(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Place offered")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        EXPIRED = "expired", _("Offer expired")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="waitlist")
    child = models.ForeignKey(Child, on_delete=models.PROTECT, related_name="waitlist")
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="waitlist")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    basket = models.ForeignKey(Basket, on_delete=models.SET_NULL, null=True, blank=True, related_name="waitlisted")
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    offered_at = models.DateTimeField(null=True, blank=True)
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    # Set while the offer cannot be accepted online because booking is suspended (degraded mode):
    # the offer does not expire meanwhile, and gets its time back when booking reopens.
    offer_paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session", "requested_at", "pk"]
        verbose_name_plural = "waiting list entries"
        constraints = [
            models.UniqueConstraint(
                fields=["child", "session"], condition=Q(status__in=["waiting", "offered"]),
                name="bookings_one_waiting_per_child_session",
            ),
        ]

    def __str__(self) -> str:
        return f"waiting #{self.pk}"


class Justification(models.Model):
    class Kind(models.TextChoices):
        MEDICAL = "medical", _("Medical certificate")
        SERIOUS_EVENT = "serious_event", _("Serious-event attestation")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="justifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    document = models.FileField(upload_to="justifications/%Y/%m/", blank=True)
    received_at = models.DateTimeField()
    actor_ref = models.CharField(max_length=80)

    def __str__(self) -> str:
        return f"justification #{self.pk}"


class Attendance(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    booking = models.OneToOneField(Booking, on_delete=models.PROTECT, related_name="attendance")
    present = models.BooleanField()
    recorded_at = models.DateTimeField()
    actor_ref = models.CharField(max_length=80)

    def __str__(self) -> str:
        return f"attendance #{self.pk}"


class AgentRole(models.Model):
    """A staff member who may act for families of an organisation (one site, or all of them when
    ``site`` is empty): book or cancel on their behalf, record justifications and attendance,
    see fill rates, manage waiting lists."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="booking_agent_roles")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation", "site"], name="bookings_agentrole_unique")
        ]

    def __str__(self) -> str:
        return f"agent role #{self.pk}"
