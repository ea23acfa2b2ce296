from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "guichet.bookings"
    label = "bookings"
