"""Editors' forms for the status board.

Each form only *describes* a change: ``operations()`` turns its cleaned data into the
operations of ``guichet.status.operations`` (the same vocabulary as notice files and the API).
The view hands them to ``services.changeset_create``; nothing here writes to the database.

Errors that only the services can find (an incident that ends before it starts, an advisory
that expires before it is published...) come back as ``OpError(path, message)``; ``FIELD_MAP``
says which form field each operation field belongs to, so they are shown on the right field.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import Q
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from guichet.accounts.selectors import can_edit
from guichet.catalog.models import ContactPoint, Organisation, Portal, Service

from .models import (
    ANY_CHANNEL,
    CHANNEL_CHOICES,
    Advisory,
    AffectedService,
    Availability,
    Incident,
    RestorationTarget,
    State,
)
from .operations import NEEDS_INSTEAD, OpError

PARIS = ZoneInfo("Europe/Paris")
IDEM_RE = re.compile(r"[0-9a-f]{32}")

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def new_idempotency_key() -> str:
    return secrets.token_hex(16)


@dataclass
class EditContext:
    """What a form may offer: the portal, and the parts of it this editor may change."""

    portal: Portal
    user: object
    now: dt.datetime
    organisations: list[Organisation] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    contacts: list[ContactPoint] = field(default_factory=list)
    portal_wide: bool = False

    @classmethod
    def build(cls, portal: Portal, user, now: dt.datetime) -> EditContext:
        orgs = list(Organisation.objects.filter(portal=portal))
        services = list(
            Service.objects.filter(organisation__portal=portal)
            .select_related("organisation")
            .prefetch_related("procedures")
        )
        incidents = list(
            Incident.objects.filter(organisation__portal=portal)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=now))
            .select_related("organisation")
            .order_by("-started_at")
        )
        return cls(
            portal=portal,
            user=user,
            now=now,
            organisations=[o for o in orgs if can_edit(user, portal, o)],
            services=[s for s in services if can_edit(user, portal, s.organisation, s)],
            incidents=incidents,
            contacts=list(ContactPoint.objects.filter(organisation__portal=portal).order_by("position", "label")),
            portal_wide=can_edit(user, portal),
        )

    def incident(self, slug: str | None) -> Incident | None:
        return next((i for i in self.incidents if i.slug == slug), None)

    def service(self, slug: str | None) -> Service | None:
        return next((s for s in self.services if s.slug == slug), None)

    def incident_editable(self, incident: Incident) -> bool:
        return any(o.pk == incident.organisation_id for o in self.organisations)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _unique_slug(base: str, taken: set[str], fallback: str) -> str:
    slug = slugify(base)[:40].strip("-_") or fallback
    candidate, n = slug, 2
    while candidate in taken:
        candidate = f"{slug}-{n}"
        n += 1
    return candidate


class ManageForm(forms.Form):
    """Common ground: the idempotency key, the change's title, and error mapping."""

    kind: str = ""
    heading = ""
    submit_label = _("Add to my draft")
    # operation field -> form field (when the names differ)
    FIELD_MAP: dict[str, str] = {}

    idem = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, data=None, *, ctx: EditContext, initial=None, **kwargs):
        self.ctx = ctx
        initial = dict(initial or {})
        initial.setdefault("idem", new_idempotency_key())
        super().__init__(data, initial=initial, **kwargs)
        self.setup()

    def setup(self) -> None:  # pragma: no cover - overridden where needed
        pass

    # --- what the template needs ---
    def main_fields(self):
        return [f for f in self.visible_fields() if not f.name.endswith("_en")]

    def english_fields(self):
        return [f for f in self.visible_fields() if f.name.endswith("_en")]

    def idempotency_key(self) -> str:
        raw = (self.cleaned_data.get("idem") or "").strip().lower()
        return raw if IDEM_RE.fullmatch(raw) else new_idempotency_key()

    # --- what the view needs ---
    def operations(self) -> list[dict]:
        raise NotImplementedError

    def change_title(self) -> str:
        return str(self.heading)

    def add_op_errors(self, errors: list[OpError], offset: int = 0) -> None:
        """Put the services' errors on the right fields (``offset``: this form's first operation)."""
        for err in errors:
            m = re.match(r"operations\[(\d+)\](?:\.(\w+))?", err.path)
            name = None
            if m and int(m.group(1)) >= offset:
                op_field = m.group(2)
                name = self.FIELD_MAP.get(op_field, op_field)
                if name not in self.fields or isinstance(self.fields[name].widget, forms.HiddenInput):
                    name = None
                message = err.message
            else:
                message = _("Your draft has a problem (%(where)s: %(message)s). Discard the draft and start again.") % {
                    "where": err.path, "message": err.message}
            self.add_error(name, message)

    def _choice_incident(self, required: bool = True) -> None:
        choices = [(i.slug, i.title) for i in self.ctx.incidents]
        if not required:
            choices = [("", _("(none)")), *choices]
        self.fields["incident"] = forms.ChoiceField(label=_("Incident"), choices=choices, required=required)
        if len(self.ctx.incidents) == 1 and required:
            self.fields["incident"].initial = self.ctx.incidents[0].slug

    def _choice_organisation(self) -> None:
        self.fields["organisation"] = forms.ChoiceField(
            label=_("Organisation"), choices=[(o.slug, o.name) for o in self.ctx.organisations]
        )
        if len(self.ctx.organisations) == 1:
            self.fields["organisation"].initial = self.ctx.organisations[0].slug
            self.fields["organisation"].widget = forms.HiddenInput()


# --- Incident -------------------------------------------------------------------------------


class IncidentForm(ManageForm):
    kind = "incident"
    heading = _("Incident")
    title = forms.CharField(label=_("Title"), max_length=200,
                            help_text=_("As the public will read it, e.g. “Cyberattaque : le point sur vos démarches”."))
    nature = forms.ChoiceField(label=_("Nature"), choices=Incident.Nature.choices, initial=Incident.Nature.CYBERATTACK)
    started_at = forms.DateTimeField(label=_("Started on"), widget=DATETIME_WIDGET,
                                     help_text=_("Date and time, Paris time."))
    summary = forms.CharField(label=_("Summary"), widget=forms.Textarea(attrs={"rows": 5}), required=False,
                              help_text=_("What happened and what it means for the public, in a few sentences."))
    title_en = forms.CharField(label=_("Title in English"), max_length=200, required=False)
    summary_en = forms.CharField(label=_("Summary in English"), widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def setup(self) -> None:
        self._choice_organisation()
        self.fields["started_at"].initial = self.ctx.now.replace(second=0, microsecond=0)
        self.editing: Incident | None = None
        self.order_fields(["organisation", "title", "nature", "started_at", "summary"])

    @classmethod
    def initial_for(cls, ctx: EditContext, query) -> dict:
        incident = ctx.incident(query.get("incident"))
        if incident is None:
            return {}
        return {"incident_slug": incident.slug, "organisation": incident.organisation.slug, "title": incident.title,
                "title_en": incident.title_en, "nature": incident.nature, "started_at": incident.started_at,
                "summary": incident.summary, "summary_en": incident.summary_en}

    def __init__(self, data=None, *, ctx: EditContext, initial=None, **kwargs):
        super().__init__(data, ctx=ctx, initial=initial, **kwargs)
        self.fields["incident_slug"] = forms.CharField(widget=forms.HiddenInput, required=False)
        slug = (data or {}).get("incident_slug") if data is not None else (initial or {}).get("incident_slug")
        self.editing = ctx.incident(slug) if slug else None
        if slug and self.editing is None:
            self.fields["incident_slug"].initial = ""

    @property
    def is_new(self) -> bool:
        return self.editing is None

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        if self.editing is not None:
            slug = self.editing.slug
        else:
            taken = set(Incident.objects.filter(organisation__portal=self.ctx.portal).values_list("slug", flat=True))
            slug = _unique_slug(d["title"], taken, "incident")
        op = {"op": "incident.set", "organisation": d["organisation"], "slug": slug, "title": d["title"],
              "title_en": d["title_en"], "nature": d["nature"], "started_at": _iso(d["started_at"]),
              "summary": d["summary"], "summary_en": d["summary_en"]}
        if self.editing is not None and self.editing.ended_at:
            op["ended_at"] = _iso(self.editing.ended_at)
        return [op]

    def change_title(self) -> str:
        return self.cleaned_data["title"]


# --- Timeline update ---------------------------------------------------------------------


class UpdateForm(ManageForm):
    kind = "update"
    heading = _("Post an update")
    published_at = forms.DateTimeField(label=_("Dated"), widget=DATETIME_WIDGET,
                                       help_text=_("Shown in the timeline. Paris time."))
    body = forms.CharField(label=_("Text of the update"), widget=forms.Textarea(attrs={"rows": 6}))
    body_en = forms.CharField(label=_("Text in English"), widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def setup(self) -> None:
        self._choice_incident()
        self.fields["published_at"].initial = self.ctx.now.replace(second=0, microsecond=0)
        self.order_fields(["incident", "published_at", "body"])

    @classmethod
    def initial_for(cls, ctx, query) -> dict:
        return {"incident": query.get("incident")} if ctx.incident(query.get("incident")) else {}

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        key = f"u-{d['published_at'].astimezone(PARIS):%Y%m%d-%H%M}-{self.idempotency_key()[:6]}"
        return [{"op": "update.post", "incident": d["incident"], "key": key, "published_at": _iso(d["published_at"]),
                 "body": d["body"], "body_en": d["body_en"]}]


# --- Availability of a procedure through a channel ------------------------------------------


def _procedure_choices(services: list[Service], whole_service: bool = False) -> list:
    groups = []
    for s in services:
        options = [(s.slug, _("%(service)s — the whole service") % {"service": s.name})] if whole_service else []
        options += [(f"{s.slug}/{p.slug}", p.name) for p in s.procedures.all()]
        if options:
            groups.append((s.name, options))
    return groups


class AvailabilityForm(ManageForm):
    kind = "availability"
    heading = _("Availability of a procedure")
    FIELD_MAP = {"service": "procedure"}
    channel = forms.ChoiceField(label=_("Channel"), choices=CHANNEL_CHOICES, initial=ANY_CHANNEL,
                                help_text=_("“All channels” when the state is the same however the public asks."))
    channel_label = forms.CharField(label=_("Name of the channel"), max_length=120, required=False,
                                    help_text=_("Optional, e.g. Espace Famille, COMEDEC."))
    state = forms.ChoiceField(label=_("State"), choices=State.choices, widget=forms.RadioSelect)
    explanation = forms.CharField(label=_("Explanation"), widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                  help_text=_("What does not work, in plain words."))
    instead = forms.CharField(label=_("What to do instead"), widget=forms.Textarea(attrs={"rows": 3}), required=False,
                              help_text=_("Where to go, whom to call, which form to use."))
    since = forms.DateField(label=_("Since"), widget=DATE_WIDGET, required=False)
    contacts = forms.MultipleChoiceField(label=_("Contacts to show"), required=False,
                                         widget=forms.CheckboxSelectMultiple)
    channel_label_en = forms.CharField(label=_("Name of the channel in English"), max_length=120, required=False)
    explanation_en = forms.CharField(label=_("Explanation in English"), widget=forms.Textarea(attrs={"rows": 2}),
                                     required=False)
    instead_en = forms.CharField(label=_("What to do instead, in English"), widget=forms.Textarea(attrs={"rows": 2}),
                                 required=False)

    def setup(self) -> None:
        self._choice_incident()
        self.fields["procedure"] = forms.ChoiceField(label=_("Service and procedure"),
                                                     choices=_procedure_choices(self.ctx.services))
        self.fields["contacts"].choices = [(c.key, f"{c.label} — {c.value}") for c in self.ctx.contacts]
        if not self.ctx.contacts:
            del self.fields["contacts"]
        self.fields["since"].initial = self.ctx.now.astimezone(PARIS).date()
        self.order_fields(["incident", "procedure", "channel", "channel_label", "state", "explanation", "instead",
                           "since", "contacts"])

    @classmethod
    def initial_for(cls, ctx: EditContext, query) -> dict:
        out: dict = {}
        incident = ctx.incident(query.get("incident"))
        service = ctx.service(query.get("service"))
        if incident:
            out["incident"] = incident.slug
        if service:
            procedure = next((p for p in service.procedures.all() if p.slug == query.get("procedure")), None)
            if procedure is not None:
                out["procedure"] = f"{service.slug}/{procedure.slug}"
                channel = query.get("channel") or ANY_CHANNEL
                out["channel"] = channel
                row = (Availability.objects.filter(incident=incident, procedure=procedure, channel=channel).first()
                       if incident else None)
                if row is not None:
                    out.update({
                        "channel_label": row.channel_label, "channel_label_en": row.channel_label_en,
                        "state": row.state, "explanation": row.explanation, "explanation_en": row.explanation_en,
                        "instead": row.instead, "instead_en": row.instead_en, "since": row.since,
                        "contacts": list(row.contacts.values_list("key", flat=True)),
                    })
        return out

    def clean(self):
        data = super().clean()
        if data.get("state") in NEEDS_INSTEAD and not (data.get("instead") or "").strip():
            self.add_error("instead", _(
                "Say what to do instead: a procedure that is suspended or disrupted needs it (another "
                "channel, whom to call, where to go), or write that there is no alternative for now."
            ))
        return data

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        service, procedure = d["procedure"].split("/", 1)
        op = {"op": "availability.set", "incident": d["incident"], "service": service, "procedure": procedure,
              "channel": d["channel"], "state": d["state"]}
        for name in ("channel_label", "channel_label_en", "explanation", "explanation_en", "instead", "instead_en"):
            op[name] = d[name]
        op["since"] = _date(d["since"])
        op["contacts"] = list(d.get("contacts") or [])
        existing = Availability.objects.filter(
            incident__organisation__portal=self.ctx.portal, incident__slug=d["incident"],
            procedure__service__slug=service, procedure__slug=procedure, channel=d["channel"],
        ).first()
        if existing is not None:
            op["position"] = existing.position
        return [op]


class RemoveRowForm(ManageForm):
    kind = "remove-row"
    heading = _("Remove a row")
    submit_label = _("Remove this row (in my draft)")
    FIELD_MAP = {"service": "procedure"}

    def setup(self) -> None:
        self._choice_incident()
        self.fields["procedure"] = forms.ChoiceField(label=_("Service and procedure"),
                                                     choices=_procedure_choices(self.ctx.services))
        self.fields["channel"] = forms.ChoiceField(label=_("Channel"), choices=CHANNEL_CHOICES, initial=ANY_CHANNEL)

    initial_for = AvailabilityForm.initial_for

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        service, procedure = d["procedure"].split("/", 1)
        return [{"op": "availability.remove", "incident": d["incident"], "service": service, "procedure": procedure,
                 "channel": d["channel"]}]


# --- A listed service: headline, or no longer listed ---------------------------------------


class AffectedForm(ManageForm):
    kind = "service"
    heading = _("Service on the page")
    headline = forms.CharField(label=_("Headline"), max_length=300, required=False,
                               help_text=_("Shown next to the service name, e.g. “pas de facturation possible”."))
    details = forms.CharField(label=_("Details"), widget=forms.Textarea(attrs={"rows": 5}), required=False,
                              help_text=_("Anything the public should know that is not a procedure or a channel."))
    headline_en = forms.CharField(label=_("Headline in English"), max_length=300, required=False)
    details_en = forms.CharField(label=_("Details in English"), widget=forms.Textarea(attrs={"rows": 3}),
                                 required=False)

    def setup(self) -> None:
        self._choice_incident()
        self.fields["service"] = forms.ChoiceField(label=_("Service"),
                                                   choices=[(s.slug, s.name) for s in self.ctx.services])
        self.order_fields(["incident", "service", "headline", "details"])

    @classmethod
    def initial_for(cls, ctx: EditContext, query) -> dict:
        out: dict = {}
        incident, service = ctx.incident(query.get("incident")), ctx.service(query.get("service"))
        if incident:
            out["incident"] = incident.slug
        if service:
            out["service"] = service.slug
        if incident and service:
            row = AffectedService.objects.filter(incident=incident, service=service).first()
            if row:
                out.update({"headline": row.headline, "headline_en": row.headline_en, "details": row.details,
                            "details_en": row.details_en})
        return out

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        op = {"op": "affected.set", "incident": d["incident"], "service": d["service"]}
        for name in ("headline", "headline_en", "details", "details_en"):
            op[name] = d[name]
        return [op]


class UnlistForm(ManageForm):
    kind = "unlist"
    heading = _("Stop listing a service")
    submit_label = _("Stop listing it (in my draft)")

    def setup(self) -> None:
        self._choice_incident()
        self.fields["service"] = forms.ChoiceField(label=_("Service"),
                                                   choices=[(s.slug, s.name) for s in self.ctx.services])

    initial_for = AffectedForm.initial_for

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        return [{"op": "affected.remove", "incident": d["incident"], "service": d["service"]}]


# --- Restoration target -------------------------------------------------------------------


class TargetForm(ManageForm):
    kind = "target"
    heading = _("Restoration target")
    FIELD_MAP = {"service": "scope", "procedure": "scope"}
    precision = forms.ChoiceField(label=_("How precise"), choices=RestorationTarget.Precision.choices,
                                  widget=forms.RadioSelect, initial=RestorationTarget.Precision.PERIOD)
    earliest = forms.DateField(label=_("Date, or earliest date"), widget=DATE_WIDGET, required=False,
                               help_text=_("Required for an exact date."))
    latest = forms.DateField(label=_("Latest date"), widget=DATE_WIDGET, required=False,
                             help_text=_("For a period: when it should be back at the latest."))
    text = forms.CharField(label=_("In words"), max_length=200, required=False,
                           help_text=_("As the public will read it, e.g. “dans le courant de l’été”, “à partir de mi-mai”."))
    text_en = forms.CharField(label=_("In words, in English"), max_length=200, required=False)

    def setup(self) -> None:
        self._choice_incident()
        self.fields["scope"] = forms.ChoiceField(label=_("For"), choices=_procedure_choices(self.ctx.services, True))
        self.order_fields(["incident", "scope", "precision", "earliest", "latest", "text"])

    @classmethod
    def initial_for(cls, ctx: EditContext, query) -> dict:
        out: dict = {}
        incident, service = ctx.incident(query.get("incident")), ctx.service(query.get("service"))
        if incident:
            out["incident"] = incident.slug
        if service:
            procedure = next((p for p in service.procedures.all() if p.slug == query.get("procedure")), None)
            out["scope"] = f"{service.slug}/{procedure.slug}" if procedure else service.slug
            if incident:
                current = (RestorationTarget.objects.filter(incident=incident, service=service, procedure=procedure)
                           .order_by("-recorded_at", "-pk").first())
                if current:
                    out.update({"precision": current.precision, "earliest": current.earliest,
                                "latest": current.latest, "text": current.text, "text_en": current.text_en})
        return out

    def clean(self):
        d = super().clean()
        precision = d.get("precision")
        if precision == RestorationTarget.Precision.PERIOD and not (d.get("text") or d.get("earliest") or d.get("latest")):
            self.add_error("text", _("Describe the period in words, or give its dates."))
        if precision == RestorationTarget.Precision.UNKNOWN and (d.get("earliest") or d.get("latest")):
            self.add_error("earliest", _("“No date yet” takes no date; choose “Approximate period” instead."))
        return d

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        service, _sep, procedure = d["scope"].partition("/")
        op = {"op": "target.set", "incident": d["incident"], "service": service, "precision": d["precision"],
              "earliest": _date(d["earliest"]), "latest": _date(d["latest"]), "text": d["text"],
              "text_en": d["text_en"]}
        if procedure:
            op["procedure"] = procedure
        return [op]


# --- Advisory ------------------------------------------------------------------------------


class AdvisoryForm(ManageForm):
    kind = "advisory"
    heading = _("Advisory")
    advisory_kind = forms.ChoiceField(label=_("Kind"), choices=Advisory.Kind.choices)
    audience = forms.ChoiceField(label=_("For"), choices=Advisory.Audience.choices, initial=Advisory.Audience.EVERYONE)
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 6}))
    published_at = forms.DateTimeField(label=_("Shown from"), widget=DATETIME_WIDGET,
                                       help_text=_("Paris time. A date in the future schedules it."))
    expires_at = forms.DateTimeField(label=_("Shown until"), widget=DATETIME_WIDGET, required=False,
                                     help_text=_("Optional. Leave empty to show it until you change it."))
    title_en = forms.CharField(label=_("Title in English"), max_length=200, required=False)
    body_en = forms.CharField(label=_("Text in English"), widget=forms.Textarea(attrs={"rows": 4}), required=False)
    FIELD_MAP = {"kind": "advisory_kind"}

    def setup(self) -> None:
        self._choice_organisation()
        self._choice_incident(required=False)
        self.fields["incident"].label = _("Linked to the incident")
        self.fields["advisory_key"] = forms.CharField(widget=forms.HiddenInput, required=False)
        self.fields["published_at"].initial = self.ctx.now.replace(second=0, microsecond=0)
        self.order_fields(["organisation", "advisory_kind", "audience", "title", "body", "published_at",
                           "expires_at", "incident"])

    @classmethod
    def initial_for(cls, ctx: EditContext, query) -> dict:
        key = query.get("key")
        adv = (Advisory.objects.filter(organisation__in=ctx.organisations, key=key).select_related("organisation",
                                                                                                  "incident").first()
               if key else None)
        if adv is None:
            return {"incident": ctx.incidents[0].slug} if len(ctx.incidents) == 1 else {}
        return {"advisory_key": adv.key, "organisation": adv.organisation.slug, "advisory_kind": adv.kind,
                "audience": adv.audience, "title": adv.title, "title_en": adv.title_en, "body": adv.body,
                "body_en": adv.body_en, "published_at": adv.published_at, "expires_at": adv.expires_at,
                "incident": adv.incident.slug if adv.incident else ""}

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        key = d.get("advisory_key") or ""
        if not Advisory.objects.filter(organisation__portal=self.ctx.portal, organisation__slug=d["organisation"],
                                       key=key).exists():
            taken = set(Advisory.objects.filter(organisation__portal=self.ctx.portal).values_list("key", flat=True))
            key = _unique_slug(d["title"], taken, "avis")
        op = {"op": "advisory.set", "organisation": d["organisation"], "key": key, "kind": d["advisory_kind"],
              "audience": d["audience"], "title": d["title"], "title_en": d["title_en"], "body": d["body"],
              "body_en": d["body_en"], "published_at": _iso(d["published_at"]), "expires_at": _iso(d["expires_at"])}
        if d.get("incident"):
            op["incident"] = d["incident"]
        return [op]

    def clean(self):
        d = super().clean()
        if d.get("expires_at") and d.get("published_at") and d["expires_at"] <= d["published_at"]:
            self.add_error("expires_at", _("Must be after the date it is shown from."))
        return d

    def change_title(self) -> str:
        return self.cleaned_data["title"]


# --- Closing an incident --------------------------------------------------------------------


class CloseForm(ManageForm):
    kind = "close"
    heading = _("Close the incident")
    submit_label = _("Close it (in my draft)")
    ended_at = forms.DateTimeField(label=_("Ended on"), widget=DATETIME_WIDGET,
                                   help_text=_("From then on the incident, its rows and targets leave the public "
                                               "page; it stays in the list of past incidents."))

    def setup(self) -> None:
        self._choice_incident()
        self.fields["ended_at"].initial = self.ctx.now.replace(second=0, microsecond=0)
        self.order_fields(["incident", "ended_at"])

    initial_for = UpdateForm.initial_for

    def operations(self) -> list[dict]:
        d = self.cleaned_data
        return [{"op": "incident.close", "incident": d["incident"], "ended_at": _iso(d["ended_at"])}]


FORMS: dict[str, type[ManageForm]] = {
    f.kind: f
    for f in (IncidentForm, UpdateForm, AvailabilityForm, RemoveRowForm, AffectedForm, UnlistForm, TargetForm,
              AdvisoryForm, CloseForm)
}
# Forms that need an incident to exist first.
NEEDS_INCIDENT = {"update", "availability", "remove-row", "service", "unlist", "target", "close"}
