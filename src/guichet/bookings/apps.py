from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "guichet.bookings"
    label = "bookings"

    def ready(self):
        from guichet.accounts import sessions

        from .selectors import FAMILY_HOUSEHOLD, family_household_columns, family_household_from_row

        # The signed-in account's household, read with its session: a basket costs no query of
        # its own to learn whose it is (api._family_household).
        sessions.also_read(FAMILY_HOUSEHOLD, family_household_columns, family_household_from_row)
