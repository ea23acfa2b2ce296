"""E-mail subscriptions: ask, confirm (double opt-in), stop.

Links in e-mails only ever show a page with a button: mail scanners follow links, so a GET
never changes anything. The answer to a request is the same whether or not the address was
already subscribed.
"""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404, render
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from guichet.catalog.models import Portal, Service
from guichet.common.actor import Actor

from . import subscriptions


class SubscribeForm(forms.Form):
    email = forms.EmailField(label=_("Your e-mail address"), max_length=subscriptions.MAX_EMAIL_LENGTH)
    service = forms.ChoiceField(label=_("Which updates"), required=False)

    def __init__(self, *args, portal: Portal, **kwargs):
        super().__init__(*args, **kwargs)
        self.portal = portal
        services = Service.objects.filter(organisation__portal=portal).select_related("organisation")
        self.services = {s.slug: s for s in services}
        self.fields["service"].choices = [("", _("All services"))] + [
            (s.slug, s.tr("name")) for s in services
        ]
        self.fields["email"].widget.attrs.update({"autocomplete": "email", "inputmode": "email"})


def _form_page(request, portal: Portal, form: SubscribeForm, status: int = 200, **extra):
    for name in form.errors:
        if name in form.fields:  # tie each error to its field for screen readers
            form.fields[name].widget.attrs["aria-describedby"] = f"{form[name].id_for_label}-error"
    return render(request, "status/subscribe.html", {"portal": portal, "form": form, **extra}, status=status)


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@require_http_methods(["GET", "POST"])
def subscribe(request, portal):
    p = get_object_or_404(Portal, slug=portal)
    if request.method == "GET":
        initial = {"service": request.GET.get("service", "")}
        form = SubscribeForm(initial=initial, portal=p)
        return _form_page(request, p, form)
    form = SubscribeForm(request.POST, portal=p)
    if not form.is_valid():
        return _form_page(request, p, form, status=400)
    email = form.cleaned_data["email"]
    service = form.services.get(form.cleaned_data["service"] or "")
    limited = subscriptions.throttle(ip=_client_ip(request), email=email)
    if limited == "ip":
        return _form_page(request, p, form, status=429, throttled=True)
    if limited is None:  # over the per-address limit: answer the same, send nothing
        try:
            subscriptions.subscription_request(
                portal=p, email=email, service=service, language=translation.get_language() or "fr",
                actor=Actor.anonymous(), now=timezone.now(),
            )
        except subscriptions.SubscriptionInvalid as e:
            form.add_error(e.field if e.field in form.fields else None, e.message)
            return _form_page(request, p, form, status=400)
    return render(request, "status/subscribe_sent.html", {"portal": p, "service": service})


@require_http_methods(["GET", "POST"])
def confirm(request, token):
    now = timezone.now()
    sub = subscriptions.subscription_by_token(token)
    if not subscriptions.confirmable(sub, now):
        return render(request, "status/subscribe_invalid.html", {}, status=404)
    if request.method == "POST":
        sub = subscriptions.subscription_confirm(token=token, actor=Actor.anonymous(), now=now)
        if sub is None:
            return render(request, "status/subscribe_invalid.html", {}, status=404)
        return render(request, "status/subscribe_confirm.html", {"sub": sub, "portal": sub.portal, "done": True})
    return render(request, "status/subscribe_confirm.html", {"sub": sub, "portal": sub.portal, "done": False})


@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    sub = subscriptions.subscription_by_token(token)
    if sub is None:
        return render(request, "status/subscribe_invalid.html", {}, status=404)
    if request.method == "POST":
        sub = subscriptions.subscription_cancel(token=token, actor=Actor.anonymous(), now=timezone.now())
        return render(request, "status/subscribe_stop.html", {"sub": sub, "portal": sub.portal, "done": True})
    done = sub.unsubscribed_at is not None
    return render(request, "status/subscribe_stop.html", {"sub": sub, "portal": sub.portal, "done": done})
