"""The migration that gives bookings their session's activity and date: existing rows are filled,
and a child already booked at two centres the same day stops the migration with the booking ids
to sort out (a migration never cancels a family's booking on its own)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("bookings", "0002_agentrole")
AFTER = ("bookings", "0003_booking_activity_date")
NOW = dt.datetime(2024, 11, 20, 9, 0, tzinfo=dt.UTC)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def old_world(apps, *, twice: bool):
    Portal, Organisation = apps.get_model("catalog", "Portal"), apps.get_model("catalog", "Organisation")
    m = {name: apps.get_model("bookings", name) for name in
         ("Activity", "Unit", "Site", "Session", "Household", "Child", "Booking")}
    portal = Portal.objects.create(slug="ville-mig", name="Ville")
    org = Organisation.objects.create(portal=portal, slug="ville-mig", name="Ville")
    act = m["Activity"].objects.create(organisation=org, slug="mercredis", name="Mercredis", kind="leisure_wednesday",
                                       parts=["day"], booking_rule="sunday before at 23:59",
                                       cancellation_rule="sunday before at 23:59")
    unit = m["Unit"].objects.create(organisation=org, activity=act, code="journee", name="Journée", parts=["day"])
    day = dt.date(2024, 12, 4)
    sessions = [
        m["Session"].objects.create(organisation=org, activity=act, date=day,
                                    site=m["Site"].objects.create(organisation=org, slug=f"c{i}", name=f"C{i}"))
        for i in range(2)
    ]
    hh = m["Household"].objects.create(organisation=org, reference="F1", display_name="F", created_at=NOW)
    child = m["Child"].objects.create(organisation=org, household=hh, first_name="A", birth_date=dt.date(2016, 1, 1))
    rows = [m["Booking"].objects.create(organisation=org, household=hh, child=child, session=sessions[0], unit=unit,
                                        booked_at=NOW, actor_ref="t")]
    rows.append(m["Booking"].objects.create(organisation=org, household=hh, child=child, session=sessions[1], unit=unit,
                                            booked_at=NOW, actor_ref="t", status="booked" if twice else "cancelled"))
    return act, day, [b.pk for b in rows]


@pytest.mark.django_db(transaction=True)
def test_a_double_booking_stops_the_migration_then_existing_bookings_get_their_activity_and_date():
    """One test (migrating back and forth is slow on PostgreSQL): stopped with the ids, then,
    once an agent has cancelled one of the two, every booking is filled."""
    try:
        apps = migrate(BEFORE)
        act, day, ids = old_world(apps, twice=True)
        with pytest.raises(RuntimeError) as exc:
            migrate(AFTER)
        assert str(ids) in str(exc.value) and "cancel one" in str(exc.value)
        apps = migrate(BEFORE)
        apps.get_model("bookings", "Booking").objects.filter(pk=ids[1]).update(status="cancelled")
        apps = migrate(AFTER)
        Booking = apps.get_model("bookings", "Booking")
        filled = Booking.objects.filter(pk__in=ids).values_list("activity_id", "date").order_by().distinct()
        assert list(filled) == [(act.pk, day)]
    finally:
        latest()
