from django.http import Http404


def home(request):
    raise Http404


def portal(request, portal):
    raise Http404
