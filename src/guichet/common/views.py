import sys

from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from guichet.catalog.models import Portal


def home(request):
    """The deployment's front page: the towns it serves (straight to the only one, if one)."""
    portals = list(Portal.objects.all())
    if len(portals) == 1:
        return redirect("status:portal", portal=portals[0].slug)
    with_families = set(Portal.objects.filter(organisations__activities__isnull=False).values_list("slug", flat=True))
    return render(request, "home.html", {"portals": portals, "with_families": with_families})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


DB_BUSY_RETRY_AFTER = 5  # seconds


def server_error(request):
    """Django's 500 handler. When the error is the database that cannot be reached, or a full
    connection pool that gave no connection in time (before any view ran: reading the session,
    say), the answer is "busy, try again" — 503 with ``Retry-After`` — not a server error."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        headers = {"Retry-After": str(DB_BUSY_RETRY_AFTER)}
        if request.path.startswith("/api/"):
            return JsonResponse({"errors": [{"field": "", "code": "busy", "message":
                                 "The service is busy; send the same request again in a moment."}]},
                                status=503, headers=headers)
        return HttpResponse(
            "<!doctype html><html lang=fr><title>Service occupé</title><h1>Service momentanément occupé</h1>"
            "<p>Trop de demandes arrivent en même temps. Réessayez dans quelques secondes : "
            "rien n’a été perdu.</p><p lang=en>Too many requests at once: try again in a few seconds.</p></html>",
            status=503, headers=headers,
        )
    return HttpResponse(
        "<!doctype html><html lang=fr><title>Erreur</title><h1>Erreur du serveur</h1>"
        "<p>Une erreur est survenue. Réessayez dans un instant.</p></html>",
        status=500,
    )
