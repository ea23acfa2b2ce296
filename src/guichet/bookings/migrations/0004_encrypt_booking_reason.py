"""The reasons agents type on bookings (they may tell a child's illness) encrypted at rest
(ADR 0011): the column becomes text, then every non-empty reason is encrypted with the field key
(needed only when such rows exist)."""

from django.db import migrations

import guichet.common.crypto

encrypt, decrypt = guichet.common.crypto.migration_encrypt(
    ("bookings_booking", "reason", "bookings.booking.reason"),
)


class Migration(migrations.Migration):

    dependencies = [
        ('bookings', '0003_booking_activity_date'),
    ]

    operations = [
        migrations.AlterField(
            model_name='booking',
            name='reason',
            field=guichet.common.crypto.EncryptedTextField(blank=True, max_length=300),
        ),
        migrations.RunPython(encrypt, decrypt, elidable=False),
    ]
