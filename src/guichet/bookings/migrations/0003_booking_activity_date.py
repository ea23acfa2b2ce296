# A child is in one place at a time: Booking carries its session's activity and date, and one
# partial unique index allows at most one active booking per child, activity and day, whatever
# the site (it replaces the per-session index, which it covers).

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_activity_and_date(apps, schema_editor):
    """Copy each booking's session activity and date, then stop with a clear message if some
    child already has two active bookings for the same activity on the same day: a migration
    must not cancel a family's booking on its own; an agent cancels one of them, then the
    migration is run again."""
    if schema_editor.connection.vendor == "postgresql":
        # Check the foreign keys now, not at commit: the table is altered right after.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Booking = apps.get_model("bookings", "Booking")
    Session = apps.get_model("bookings", "Session")
    session = Session.objects.filter(pk=OuterRef("session_id"))
    Booking.objects.update(
        activity_id=Subquery(session.values("activity_id")[:1]),
        date=Subquery(session.values("date")[:1]),
    )
    twice = list(
        Booking.objects.filter(status="booked")
        .values("child_id", "activity_id", "date")
        .annotate(n=models.Count("id"))
        .filter(n__gt=1)
        .order_by("date", "child_id")[:20]
    )
    if twice:
        ids = []
        for row in twice:
            ids += list(
                Booking.objects.filter(status="booked", child_id=row["child_id"], activity_id=row["activity_id"],
                                       date=row["date"]).order_by("pk").values_list("pk", flat=True)
            )
        raise RuntimeError(
            "Some children have two active bookings for the same activity on the same day (at two "
            f"sites); cancel one of each pair, then migrate again. Booking ids: {ids}"
        )


class Migration(migrations.Migration):

    dependencies = [
        ("bookings", "0002_agentrole"),
    ]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="activity",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="bookings.activity"
            ),
        ),
        migrations.AddField(
            model_name="booking",
            name="date",
            field=models.DateField(null=True),
        ),
        migrations.RunPython(fill_activity_and_date, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="booking",
            name="activity",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="bookings.activity"
            ),
        ),
        migrations.AlterField(
            model_name="booking",
            name="date",
            field=models.DateField(),
        ),
        migrations.RemoveConstraint(
            model_name="booking",
            name="bookings_one_active_per_child_session",
        ),
        migrations.AddConstraint(
            model_name="booking",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "booked")),
                fields=("child", "activity", "date"),
                name="bookings_one_active_per_child_activity_day",
            ),
        ),
    ]
