"""Sign-in, the staff second factor, and where people land after signing in."""

from __future__ import annotations

import django_otp
import segno
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from guichet.catalog.models import Organisation
from guichet.common.actor import Actor
from guichet.common.postdata import post_values

from . import twofactor
from .forms import CodeForm, SetupCodeForm
from .models import StaffRole
from .selectors import is_staff_member, roles_of


def _next(request, default: str, errors: dict[str, str]) -> str:
    """Where to go once signed in: ``next`` (posted, else in the query string) on this site, else
    ``default``. A ``next`` posted twice or holding a control character is an error in ``errors``."""
    posted = post_values(request.POST, {"next": gettext("Page to open after signing in")}, errors)["next"]
    target = "" if errors else posted or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"


def locked_out(request, credentials=None, *args, **kwargs):
    """django-axes' answer to a locked pair (account name, address): the same page whether
    the account exists or not, status 429."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "accounts/locked_out.html", {"minutes": minutes}, status=429)


@login_required
def after_login(request):
    """Where ``LOGIN_REDIRECT_URL`` leads: staff to their spaces, families to their portal."""
    user = request.user
    if is_staff_member(user):
        return redirect("accounts:staff-home")
    from guichet.bookings.models import Guardian

    guardian = Guardian.objects.filter(user=user).select_related("household__organisation__portal").first()
    if guardian is not None:
        return redirect("bookings:home", guardian.household.organisation.portal.slug)
    return redirect("accounts:family-start")


@login_required
def staff_home(request):
    """A staff member's spaces: one link per role, and their second-factor settings."""
    if not is_staff_member(request.user):
        raise PermissionDenied
    rows = roles_of(request.user)
    labels = {"editor": gettext("Status editor"), "agent": gettext("Booking agent"),
              **{k: str(v) for k, v in StaffRole.Kind.choices}}
    portals_edit = sorted({p for k, p, _s in rows if k == "editor"})
    portals_agent = sorted({p for k, p, _s in rows if k == "agent"})
    portals_review = sorted({p for k, p, _s in rows if k in ("agent", "admin")})
    # Staff roles' scope is an organisation slug: one card per (portal, organisation).
    orgs_billing = sorted({(p, s) for k, p, s in rows if k in ("finance", "counter")})
    orgs_water = sorted({(p, s) for k, p, s in rows if k == "finance"} & _water_organisations())
    names = {(p, o): name for p, o, name in Organisation.objects.filter(
        slug__in={o for _p, o in orgs_billing}).values_list("portal__slug", "slug", "name")}
    orgs_billing = [(p, o, names.get((p, o), o)) for p, o in orgs_billing]
    orgs_water = [(p, o, names.get((p, o), o)) for p, o in orgs_water]
    return render(request, "accounts/staff_home.html", {
        "rows": [(labels[k], p, s) for k, p, s in rows], "portals_edit": portals_edit,
        "portals_agent": portals_agent, "portals_review": portals_review,
        "orgs_billing": orgs_billing, "orgs_water": orgs_water,
        "codes_left": twofactor.recovery_codes_left(request.user),
    })


def _water_organisations() -> set[tuple[str, str]]:
    """(portal, organisation) slugs of the organisations running the water service."""
    from guichet.water.models import Creditor, Customer

    return {(p, o) for model in (Creditor, Customer) for p, o in model.objects.values_list(
        "organisation__portal__slug", "organisation__slug").distinct()}


@never_cache
@sensitive_post_parameters("code")
def two_factor(request):
    """Second step of a staff sign-in: a code from the app, or a recovery code."""
    user = request.user
    if not user.is_authenticated:
        return redirect(f"{reverse('accounts:login')}?next={request.get_full_path()}")
    refused: dict[str, str] = {}
    target = _next(request, reverse("accounts:after-login"), refused)
    if user.is_verified():
        return HttpResponseRedirect(target)
    if not twofactor.has_second_factor(user):
        return redirect(f"{reverse('accounts:two-factor-setup')}?next={target}")
    form = CodeForm(request.POST or None)
    for message in refused.values():  # nothing is checked: a recovery code is not used up
        form.add_error(None, message)
    if request.method == "POST" and form.is_valid():
        device = twofactor.second_factor_check(user=user, code=form.cleaned_data["code"],
                                               actor=Actor.for_user(user))
        if device is not None:
            django_otp.login(request, device)
            request.session.cycle_key()
            if device.name == twofactor.RECOVERY_NAME:
                return render(request, "accounts/recovery_used.html", {
                    "next": target, "codes_left": twofactor.recovery_codes_left(user)})
            return HttpResponseRedirect(target)
        form.add_error("code", _wrong_code())
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/two_factor.html", {"form": form, "next": target}, status=status)


def _wrong_code() -> str:
    return gettext("This code is not valid (or was already used). Type the code your app shows now; "
                   "after several wrong codes, wait a few seconds before trying again.")


@never_cache
@sensitive_post_parameters("code")
def two_factor_setup(request):
    """First sign-in of a staff member: scan the QR code, type a code, get recovery codes."""
    user = request.user
    if not user.is_authenticated:
        return redirect(f"{reverse('accounts:login')}?next={request.get_full_path()}")
    refused: dict[str, str] = {}
    target = _next(request, reverse("accounts:after-login"), refused)
    if twofactor.has_second_factor(user) and not user.is_verified():
        # Replacing an authenticator needs the current one: no takeover with a password alone.
        return redirect(f"{reverse('accounts:two-factor')}?next={target}")
    device = twofactor.pending_totp(user)
    form = SetupCodeForm(request.POST or None)
    for message in refused.values():
        form.add_error(None, message)
    if request.method == "POST" and form.is_valid():
        codes = twofactor.totp_confirm(user=user, device=device, code=form.cleaned_data["code"],
                                       actor=Actor.for_user(user))
        if codes is not None:
            device.refresh_from_db()
            django_otp.login(request, device)
            request.session.cycle_key()
            return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": target})
        form.add_error("code", _wrong_code())
    qr = segno.make(device.config_url, error="m")
    return render(request, "accounts/two_factor_setup.html", {
        "form": form, "next": target, "qr_svg": qr.svg_inline(scale=5, dark="#000", light="#fff",
                                                              title=gettext("QR code to scan")),
        "secret": twofactor.secret_base32(device), "issuer": settings.OTP_TOTP_ISSUER,
        "replacing": twofactor.has_second_factor(user),
    }, status=400 if request.method == "POST" else 200)


@never_cache
@login_required
@require_POST
def recovery_codes_renew(request):
    """New recovery codes (the old ones stop working); only in a verified staff session."""
    if not request.user.is_verified():
        return redirect("accounts:two-factor")
    codes = twofactor.recovery_codes_renew(user=request.user, actor=Actor.for_user(request.user))
    return render(request, "accounts/recovery_codes.html", {"codes": codes,
                                                            "next": reverse("accounts:staff-home")})
