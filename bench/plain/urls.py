"""The plain view, then every URL of Guichet (so that /healthz, the login page and whatever a
middleware reverses are there as in a real project)."""

from django.urls import path

from guichet.urls import urlpatterns as guichet_urlpatterns

from . import views

PATH = "/plain/v1/bookings/baskets"

urlpatterns = [
    path(PATH.lstrip("/"), views.basket_post, name="plain_basket_post"),
    *guichet_urlpatterns,
]
