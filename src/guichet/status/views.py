from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from guichet.catalog.models import Portal

from .selectors import page_state


def portal_home(request, portal):
    p = get_object_or_404(Portal, slug=portal)
    return render(request, "status/page.html", {"state": page_state(p, timezone.now())})


def page(request, portal):
    p = get_object_or_404(Portal, slug=portal)
    return render(request, "status/page.html", {"state": page_state(p, timezone.now())})


def service(request, portal, service):
    raise Http404


def atom(request, portal):
    raise Http404


def json_state(request, portal):
    return JsonResponse({})
