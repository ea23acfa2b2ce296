"""The issue's reference, "a plain Django stack", measured in the same run as Guichet.

``views.basket_post`` answers the same week-basket request as ``POST /api/v1/bookings/baskets``
the way a competent developer would with plain Django and no queue: session auth and CSRF
(Guichet's own middleware), one ``transaction.atomic()`` that locks the session parts with
``select_for_update()`` in primary-key order, checks capacity and writes Guichet's own models.
It is mounted only by ``bench.plain.urls`` (settings ``bench.plain.settings``), never by
Guichet's URLs. ``run.measure`` runs the opening-day rush against it (see ``run.py``).
"""
