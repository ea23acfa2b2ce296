from django.http import Http404


def poster_pdf(request, portal):
    raise Http404
