"""The editors' back-office for the status board.

How a change flows (kept deliberately simple):

1. Each form (new incident, a channel's availability, a restoration target...) only builds
   operations (``guichet.status.operations``). They are tried once inside a transaction that is
   rolled back ("dry run"), so that every error the services would raise at publication is shown
   now, on the right field, and nothing changes.
2. They are then added to the editor's **open draft** for that page: a draft is a ``ChangeSet``;
   the first form creates it (``services.changeset_create``), later ones add to it
   (``services.changeset_append``). The editor can thus prepare a whole incident (the
   incident, ten rows, a target, an advisory) and publish it in one go, which also sends one
   notification to subscribers instead of ten.
3. The draft's review page lists, in words, what will change ("Service de l'eau / Facturation /
   Tous canaux : Suspendu → Perturbé"). "Publish" calls ``services.changeset_publish``: it
   publishes, or, when the page requires a second editor, submits for approval; another editor
   then approves (the same service call) or rejects it.

Every form carries a hidden idempotency key: a form submitted twice acts once.
Views never save a model: every write goes through ``status.services`` or ``catalog.services``,
which journal it.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as Forbidden
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from guichet.accounts.selectors import can_edit, editable_portals
from guichet.catalog import services as catalog_services
from guichet.catalog.models import Portal, Procedure, Service
from guichet.common.actor import Actor
from guichet.common.frdates import format_date_fr
from guichet.common.postdata import post_values

from . import services
from .forms import FORMS, NEEDS_INCIDENT, EditContext, IncidentForm
from .models import (
    ANY_CHANNEL,
    CHANNEL_CHOICES,
    Advisory,
    Availability,
    ChangeSet,
    Incident,
    RestorationTarget,
    State,
)
from .operations import OperationsInvalid, OpError
from .selectors import contacts_shown_nowhere, page_state
from .templatetags.status_public import format_datetime

OPEN = (ChangeSet.Status.DRAFT, ChangeSet.Status.PENDING)


# --- Access -----------------------------------------------------------------------------------


def _portal_for(request, slug: str) -> Portal:
    """The portal, if this user holds any editor role on it (403 otherwise)."""
    portal = get_object_or_404(Portal, slug=slug)
    if not any(p.pk == portal.pk for p in editable_portals(request.user)):
        raise Forbidden
    return portal


def _open_draft(portal: Portal, user) -> ChangeSet | None:
    return (
        ChangeSet.objects.filter(portal=portal, author=user, status=ChangeSet.Status.DRAFT)
        .order_by("-created_at", "-pk")
        .first()
    )


# --- Dry run and drafts -------------------------------------------------------------------


class _Rollback(Exception):
    pass


def dry_run(*, portal: Portal, operations: list[dict], actor: Actor, now: dt.datetime) -> list[OpError]:
    """Apply the operations through the services, then roll everything back: the errors, if any."""
    try:
        with transaction.atomic():
            services.apply_operations(
                portal=Portal.objects.get(pk=portal.pk), operations=operations, actor=actor, now=now
            )
            raise _Rollback
    except _Rollback:
        return []
    except OperationsInvalid as e:
        return e.errors


def add_to_draft(
    *, portal: Portal, user, actor: Actor, title: str, operations: list[dict], now: dt.datetime,
    idempotency_key: str,
) -> ChangeSet:
    """Put ``operations`` in the editor's open draft (a new draft if there is none)."""
    key = f"web:{user.pk}:{idempotency_key}"
    done = ChangeSet.objects.filter(portal=portal, idempotency_key=key).first()
    if done is not None:  # the same form submitted twice
        return done
    draft = _open_draft(portal, user)
    if draft is None:
        return services.changeset_create(
            portal=portal, user=user, actor=actor, title=title, operations=operations, now=now,
            idempotency_key=key,
        )
    return services.changeset_append(
        changeset=draft, user=user, actor=actor, operations=operations, now=now, idempotency_key=key
    )


# --- Describing a changeset in words ---------------------------------------------------------

STATE_LABELS = dict(State.choices)
CHANNEL_LABELS = dict(CHANNEL_CHOICES)


def _when(value: str | None) -> str:
    if not value:
        return ""
    parsed = dt.datetime.fromisoformat(value)
    return format_datetime(parsed if parsed.tzinfo else timezone.make_aware(parsed))


def _day(value: str | None) -> str:
    return format_date_fr(dt.date.fromisoformat(value)) if value else ""


def _target_words(precision: str, earliest, latest, text: str) -> str:
    if text:
        return text
    if precision == RestorationTarget.Precision.UNKNOWN:
        return _("no date yet")
    earliest = earliest if isinstance(earliest, str) or earliest is None else earliest.isoformat()
    latest = latest if isinstance(latest, str) or latest is None else latest.isoformat()
    if earliest and latest:
        return _("between %(a)s and %(b)s") % {"a": _day(earliest), "b": _day(latest)}
    return _day(earliest or latest)


def describe_operations(portal: Portal, operations: list[dict]) -> list[dict]:
    """One readable line per operation: ``{"what", "before", "after", "details"}``."""
    services_by_slug = {s.slug: s for s in Service.objects.filter(organisation__portal=portal)}
    incidents = {i.slug: i for i in Incident.objects.filter(organisation__portal=portal)}
    draft_titles: dict[str, str] = {}

    def service_name(slug):
        s = services_by_slug.get(slug)
        return s.name if s else slug

    def procedure(slug_s, slug_p):
        return Procedure.objects.filter(service__organisation__portal=portal, service__slug=slug_s, slug=slug_p).first()

    def incident_title(slug):
        if slug in draft_titles:
            return draft_titles[slug]
        return incidents[slug].title if slug in incidents else slug

    lines = []
    for op in operations:
        name = op.get("op")
        line = {"what": "", "before": "", "after": "", "details": []}
        if name == "incident.set":
            existing = incidents.get(op["slug"])
            draft_titles[op["slug"]] = op["title"]
            line["what"] = _("Incident “%(title)s”") % {"title": op["title"]}
            if existing is None:
                line["after"] = _("new, started %(when)s") % {"when": _when(op["started_at"])}
            else:
                changed = [f for f in ("title", "title_en", "nature", "summary", "summary_en")
                           if (getattr(existing, f) or "") != (op.get(f) or "")]
                line["after"] = _("updated") + (f" ({', '.join(changed)})" if changed else "")
            if op.get("summary"):
                line["details"].append(op["summary"])
        elif name == "incident.close":
            line["what"] = _("Incident “%(title)s”") % {"title": incident_title(op["incident"])}
            line["before"] = _("in progress")
            line["after"] = _("closed on %(when)s") % {"when": _when(op["ended_at"])}
        elif name == "update.post":
            line["what"] = _("Update dated %(when)s on “%(title)s”") % {
                "when": _when(op["published_at"]), "title": incident_title(op["incident"])}
            line["after"] = _("new")
            line["details"].append(op["body"])
        elif name in ("availability.set", "availability.remove"):
            proc = procedure(op["service"], op["procedure"])
            channel = op.get("channel", ANY_CHANNEL)
            channel_words = str(CHANNEL_LABELS.get(channel, channel))
            if op.get("channel_label"):
                channel_words += f" ({op['channel_label']})"
            line["what"] = " / ".join([service_name(op["service"]), proc.name if proc else op["procedure"], channel_words])
            row = (Availability.objects.filter(incident__slug=op["incident"], incident__organisation__portal=portal,
                                               procedure=proc, channel=channel).first() if proc else None)
            line["before"] = str(STATE_LABELS[row.state]) if row else _("not listed")
            if name == "availability.set":
                line["after"] = str(STATE_LABELS.get(op["state"], op["state"]))
                for label, key in ((_("Explanation"), "explanation"), (_("What to do instead"), "instead")):
                    if op.get(key):
                        line["details"].append(f"{label} : {op[key]}")
            else:
                line["after"] = _("row removed (works normally unless another row says otherwise)")
        elif name == "affected.set":
            line["what"] = service_name(op["service"])
            line["after"] = _("listed on the page") + (f" — {op['headline']}" if op.get("headline") else "")
            if op.get("details"):
                line["details"].append(op["details"])
        elif name == "affected.remove":
            line["what"] = service_name(op["service"])
            line["before"] = _("listed")
            line["after"] = _("no longer listed: works normally")
        elif name == "target.set":
            where = service_name(op["service"])
            proc = procedure(op["service"], op["procedure"]) if op.get("procedure") else None
            if proc:
                where += f" / {proc.name}"
            line["what"] = _("Restoration target for %(where)s") % {"where": where}
            current = None
            if op["service"] in services_by_slug:
                current = (RestorationTarget.objects.filter(
                    incident__slug=op["incident"], incident__organisation__portal=portal,
                    service=services_by_slug[op["service"]], procedure=proc,
                ).order_by("-recorded_at", "-pk").first())
            line["before"] = (_target_words(current.precision, current.earliest, current.latest, current.text)
                              if current else _("none"))
            line["after"] = _target_words(op["precision"], op.get("earliest"), op.get("latest"), op.get("text", ""))
        elif name == "advisory.set":
            existing = Advisory.objects.filter(organisation__portal=portal, key=op["key"]).first()
            line["what"] = _("Advisory “%(title)s”") % {"title": op["title"]}
            line["after"] = (_("new") if existing is None else _("updated"))
            shown = _("shown from %(when)s") % {"when": _when(op["published_at"])}
            if op.get("expires_at"):
                shown += ", " + _("until %(when)s") % {"when": _when(op["expires_at"])}
            line["details"].append(shown)
        else:
            line["what"] = name
            line["after"] = _("changed")
        lines.append(line)
    return lines


# --- Pages -------------------------------------------------------------------------------


@login_required
def home(request):
    portals = editable_portals(request.user)
    open_sets = ChangeSet.objects.filter(portal__in=portals).select_related("portal", "author")
    pending = [cs for cs in open_sets.filter(status=ChangeSet.Status.PENDING).order_by("submitted_at")]
    drafts = list(open_sets.filter(status=ChangeSet.Status.DRAFT, author=request.user))
    recent = list(
        open_sets.filter(status__in=[ChangeSet.Status.PUBLISHED, ChangeSet.Status.REJECTED])
        .order_by("-created_at")[:10]
    )
    return render(request, "status/manage/home.html", {
        "portals": portals, "pending": pending, "drafts": drafts, "recent": recent,
    }, status=200 if portals else 403)


@login_required
def portal(request, portal):
    p = _portal_for(request, portal)
    now = timezone.now()
    ctx = EditContext.build(p, request.user, now)
    state = page_state(p, now)
    editable_services = {s.pk for s in ctx.services}
    editable_orgs = {o.pk for o in ctx.organisations}
    listed = []
    for ss in state.listed:
        listed.append({"ss": ss, "editable": ss.service.pk in editable_services})
    unlisted = [ss for ss in state.unlisted if ss.service.pk in editable_services]
    changesets = ChangeSet.objects.filter(portal=p).select_related("author")
    return render(request, "status/manage/portal.html", {
        "portal": p,
        "state": state,
        "listed": listed,
        "unlisted": unlisted,
        "incidents": [{"view": iv, "editable": iv.incident.organisation_id in editable_orgs}
                      for iv in state.incidents],
        "upcoming": [i for i in ctx.incidents if i.started_at > now],
        "advisories": [{"advisory": a, "editable": a.organisation_id in editable_orgs} for a in state.advisories],
        "scheduled": Advisory.objects.filter(organisation__portal=p, published_at__gt=now),
        "draft": _open_draft(p, request.user),
        "pending": changesets.filter(status=ChangeSet.Status.PENDING),
        "recent": changesets.exclude(status=ChangeSet.Status.DISCARDED)[:8],
        "can_create_incident": bool(ctx.organisations),
        "portal_wide": ctx.portal_wide,
        "scoped_services": None if ctx.portal_wide else ctx.services,
        "contacts_shown_nowhere": contacts_shown_nowhere(p) if ctx.portal_wide else [],
    })


@login_required
@require_http_methods(["GET", "POST"])
def edit(request, portal, kind):
    p = _portal_for(request, portal)
    form_class = FORMS.get(kind)
    if form_class is None:
        raise Http404
    now = timezone.now()
    ctx = EditContext.build(p, request.user, now)
    if kind in NEEDS_INCIDENT and not ctx.incidents:
        messages.info(request, _("Create the incident first: every row, target and update belongs to one."))
        return redirect(reverse("status:manage-edit", args=[p.slug, "incident"]))
    if not (ctx.organisations or ctx.services):
        raise Forbidden
    # Asking for a service or an incident outside one's role is refused outright.
    wanted_service = request.GET.get("service")
    if wanted_service and ctx.service(wanted_service) is None:
        raise Forbidden
    if request.method == "POST":
        form = form_class(request.POST, ctx=ctx)
        if form.is_valid():
            cs = _submit(request, p, form, now)
            if cs is not None:
                messages.success(request, _("Added to your draft. Review it, then publish."))
                return redirect(reverse("status:manage-changeset", args=[p.slug, cs.pk]))
        status = 400
    else:
        form = form_class(ctx=ctx, initial=form_class.initial_for(ctx, request.GET))
        status = 200
    return render(request, "status/manage/edit.html", {
        "portal": p, "form": form, "kind": kind, "draft": _open_draft(p, request.user),
        "is_new_incident": isinstance(form, IncidentForm) and form.is_new,
        "history": _target_history(ctx, form) if kind == "target" else None,
    }, status=status)


def _submit(request, p: Portal, form, now) -> ChangeSet | None:
    """Dry-run the form's operations after the open draft's, then add them to it; errors -> form."""
    user, actor = request.user, Actor.for_user(request.user)
    operations = form.operations()
    try:
        services.check_can_edit(user=user, portal=p, operations=operations)
    except services.PermissionDenied:
        form.add_error(None, _("Your role does not cover this part of the page. Ask an editor of the whole page."))
        return None
    draft = _open_draft(p, user)
    before = list(draft.operations) if draft else []
    errors = dry_run(portal=p, operations=[*before, *operations], actor=actor, now=now)
    if errors:
        form.add_op_errors(errors, offset=len(before))
        return None
    try:
        return add_to_draft(portal=p, user=user, actor=actor, title=form.change_title(), operations=operations,
                            now=now, idempotency_key=form.idempotency_key())
    except OperationsInvalid as e:
        form.add_op_errors(e.errors, offset=len(before))
    except services.PermissionDenied:
        form.add_error(None, _("Your role does not cover this part of the page. Ask an editor of the whole page."))
    except services.StatusError as e:
        form.add_error(None, e.message)
    return None


def _target_history(ctx: EditContext, form) -> list[RestorationTarget]:
    value = form["incident"].value(), form["scope"].value()
    incident = ctx.incident(value[0])
    if incident is None or not value[1]:
        return []
    s_slug, _sep, p_slug = str(value[1]).partition("/")
    service = ctx.service(s_slug)
    if service is None:
        return []
    qs = RestorationTarget.objects.filter(incident=incident, service=service)
    qs = qs.filter(procedure__slug=p_slug) if p_slug else qs.filter(procedure__isnull=True)
    return list(qs.order_by("-recorded_at", "-pk"))


@login_required
@require_http_methods(["GET", "POST"])
def changeset(request, portal, pk):
    p = _portal_for(request, portal)
    cs = get_object_or_404(ChangeSet.objects.select_related("author", "decided_by"), portal=p, pk=pk)
    errors: list[str] = []
    if request.method == "POST":
        if cs.status == ChangeSet.Status.DRAFT and cs.author_id != request.user.pk:
            raise Forbidden  # a draft is its author's until submitted
        refused: dict[str, str] = {}
        action = post_values(request.POST, {"action": _("Action")}, refused)["action"]
        actor, now = Actor.for_user(request.user), timezone.now()
        try:
            if refused:
                errors.append(refused["action"])
            elif action in ("publish", "approve"):
                cs = services.changeset_publish(changeset=cs, user=request.user, actor=actor, now=now)
                if cs.status == ChangeSet.Status.PUBLISHED:
                    messages.success(request, _("Published. The public page shows it now."))
                    return redirect(reverse("status:manage-portal", args=[p.slug]))
                messages.success(request, _("Submitted. Another editor must approve it before it is published."))
                return redirect(reverse("status:manage-changeset", args=[p.slug, cs.pk]))
            elif action in ("reject", "discard"):
                cs = services.changeset_reject(changeset=cs, user=request.user, actor=actor, now=now)
                messages.info(request, _("Rejected.") if cs.status == ChangeSet.Status.REJECTED else _("Draft discarded."))
                return redirect(reverse("status:manage-portal", args=[p.slug]))
            else:
                errors.append(_("%(field)s: unknown; use one of the page's buttons.") % {"field": _("Action")})
        except services.PermissionDenied:
            errors.append(_("Your role does not cover every part of this change."))
        except OperationsInvalid as e:
            errors.extend(f"{err.path}: {err.message}" for err in e.errors)
        except services.StatusError as e:
            if cs.author_id == request.user.pk and "second editor" in e.message:
                errors.append(_("You wrote this change: another editor must approve it."))
            else:
                errors.append(e.message)
    lines = describe_operations(p, cs.operations)
    is_author = cs.author_id == request.user.pk
    return render(request, "status/manage/changeset.html", {
        "portal": p, "cs": cs, "lines": lines, "errors": errors, "is_author": is_author,
        "can_publish": cs.status == ChangeSet.Status.DRAFT and is_author,
        "can_approve": cs.status == ChangeSet.Status.PENDING and not is_author,
        "can_withdraw": cs.status == ChangeSet.Status.PENDING and is_author,
    }, status=400 if errors else 200)


@login_required
@require_POST
def checked(request, portal):
    p = _portal_for(request, portal)
    if not can_edit(request.user, p):
        raise Forbidden
    catalog_services.portal_mark_checked(actor=Actor.for_user(request.user), portal=p, now=timezone.now())
    messages.success(request, _("Thank you: the page shows it was checked just now."))
    return HttpResponseRedirect(reverse("status:manage-portal", args=[p.slug]))

