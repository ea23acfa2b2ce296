from django.http import Http404


def subscribe(request, portal):
    raise Http404


def confirm(request, token):
    raise Http404


def unsubscribe(request, token):
    raise Http404
