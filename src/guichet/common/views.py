from django.db import connection
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


def server_error(request):
    return HttpResponse(
        "<!doctype html><html lang=fr><title>Erreur</title><h1>Erreur du serveur</h1>"
        "<p>Une erreur est survenue. Réessayez dans un instant.</p></html>",
        status=500,
    )
