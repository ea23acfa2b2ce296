"""Public pages of the status board: thin views over ``selectors.page_state``."""

from __future__ import annotations

import json

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone, translation

from guichet.catalog.models import Organisation, Portal

from . import feeds, serialize
from .public import LiveLinks, public_context
from .selectors import page_state

PUBLIC_CORS = {"Access-Control-Allow-Origin": "*"}


def _state(slug: str):
    portal = get_object_or_404(Portal, slug=slug)
    return page_state(portal, timezone.now())


def family_portal_url(portal: Portal) -> str | None:
    """The family portal of ``portal`` (bookings, invoices), if its organisations offer activities."""
    if not Organisation.objects.filter(portal=portal, activities__isnull=False).exists():
        return None
    return reverse("bookings:home", kwargs={"portal": portal.slug})


def portal_home(request, portal):
    state = _state(portal)
    return render(request, "status/portal.html", public_context(
        state, links=LiveLinks(portal), family_portal=family_portal_url(state.portal)))


def page(request, portal):
    state = _state(portal)
    return render(request, "status/page.html", public_context(
        state, links=LiveLinks(portal), family_portal=family_portal_url(state.portal)))


def service(request, portal, service):
    state = _state(portal)
    ss = state.service(service)
    if ss is None:
        raise Http404
    return render(request, "status/service.html", public_context(
        state, links=LiveLinks(portal), ss=ss, family_portal=family_portal_url(state.portal)))


def atom(request, portal):
    state = _state(portal)
    links = LiveLinks(portal)
    feed = feeds.build_feed(
        state, page_url=links.page, feed_url=links.atom, language=translation.get_language() or "fr",
        absolute=request.build_absolute_uri,
    )
    response = HttpResponse(feeds.render_feed(feed), content_type="application/atom+xml; charset=utf-8")
    for k, v in PUBLIC_CORS.items():
        response[k] = v
    return response


def json_state(request, portal):
    state = _state(portal)
    links = LiveLinks(portal)
    doc = serialize.document(
        state, generated_at=state.now,
        links={"page": request.build_absolute_uri(links.page), "atom": request.build_absolute_uri(links.atom)},
    )
    response = HttpResponse(
        json.dumps(doc, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8"
    )
    for k, v in PUBLIC_CORS.items():
        response[k] = v
    return response
