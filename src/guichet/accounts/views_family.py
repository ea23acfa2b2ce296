"""Families: sign up with e-mail verification, a start page, inviting another guardian."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from guichet.bookings import guardians
from guichet.bookings.models import Guardian
from guichet.catalog.models import Portal
from guichet.common.actor import Actor

from .families import family_signup, family_verify
from .forms import InviteForm, SignupForm


@never_cache
@sensitive_post_parameters("password1", "password2")
def signup(request):
    if request.user.is_authenticated:
        return redirect("accounts:after-login")
    initial = {"email": request.GET.get("email", "")[:254]}
    form = SignupForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        family_signup(email=form.cleaned_data["email"], password=form.cleaned_data["password1"],
                      actor=Actor.anonymous())
        return redirect("accounts:signup-sent")
    return render(request, "accounts/signup.html", {"form": form, "next": request.GET.get("next", "")},
                  status=400 if request.method == "POST" else 200)


def signup_sent(request):
    return render(request, "accounts/signup_sent.html")


@never_cache
def verify_email(request, token):
    """GET shows a button (link checkers that open the link activate nothing); POST activates."""
    if request.method != "POST":
        return render(request, "accounts/verify.html", {"token": token})
    result = family_verify(token=token)
    status = 200 if result.state in ("activated", "already") else 400
    return render(request, "accounts/verified.html", {"state": result.state}, status=status)


@login_required
def family_start(request):
    """A family account without a family file yet: how to get linked to one."""
    guardianships = list(Guardian.objects.filter(user=request.user)
                         .select_related("household__organisation__portal"))
    if guardianships:
        return redirect("bookings:home", guardianships[0].household.organisation.portal.slug)
    return render(request, "accounts/family_start.html")


def _household(request, portal: Portal):
    guardian = (Guardian.objects.select_related("household__organisation")
                .filter(user=request.user, household__organisation__portal=portal).order_by("pk").first())
    if guardian is None:
        raise Http404
    return guardian.household


@never_cache
@login_required
def invite(request, portal):
    """A guardian invites another (the other parent, a grandparent...) to the family file."""
    p = get_object_or_404(Portal, slug=portal)
    household = _household(request, p)
    others = list(Guardian.objects.filter(household=household).select_related("user").order_by("pk"))
    form = InviteForm(request.POST or None)
    sent_to = None
    if request.method == "POST" and form.is_valid():
        try:
            guardians.guardian_invite(household=household, inviter=request.user, email=form.cleaned_data["email"],
                                      actor=Actor.for_user(request.user))
            sent_to = form.cleaned_data["email"].strip().lower()
            form = InviteForm()
        except guardians.GuardianError as e:
            form.add_error(e.field if e.field in form.fields else None, e.message)
    status = 400 if request.method == "POST" and not sent_to else 200
    return render(request, "accounts/invite.html", {
        "portal": p, "household": household, "guardians": others, "form": form, "sent_to": sent_to, "nav": "guardians",
        "days": guardians.INVITE_DAYS}, status=status)


@never_cache
def join(request, token):
    """The invited person's link: sign in (or sign up) with the invited address, then accept."""
    try:
        invitation = guardians.invitation_read(token)
    except guardians.GuardianError as e:
        return render(request, "accounts/join.html", {"error": e.message}, status=400)
    if not request.user.is_authenticated:
        here = reverse("accounts:join", args=[token])
        return render(request, "accounts/join.html", {"anonymous": True, "next": here,
                                                      "portal": invitation.household.organisation.portal})
    error = None
    if request.method == "POST":
        try:
            guardian, _created = guardians.guardian_join(token=token, user=request.user,
                                                         actor=Actor.for_user(request.user))
            return redirect("bookings:home", guardian.household.organisation.portal.slug)
        except guardians.GuardianError as e:
            error = e.message
    elif (request.user.email or "").lower() != invitation.email:
        error = _("This invitation was sent to another e-mail address: sign in with the account of that address.")
    return render(request, "accounts/join.html", {
        "invitation": invitation, "portal": invitation.household.organisation.portal, "error": error,
    }, status=400 if error else 200)
