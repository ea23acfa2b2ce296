"""Family quotients and crèche resources encrypted at rest (ADR 0011): the columns become text,
then every existing value is encrypted with the field key (needed only when rows exist)."""

from django.db import migrations

import guichet.common.crypto

encrypt, decrypt = guichet.common.crypto.migration_encrypt(
    ("billing_householdquotient", "quotient", "billing.householdquotient.quotient"),
    ("billing_householdquotient", "resources_cents", "billing.householdquotient.resources_cents"),
)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0005_line_guard_per_statement'),
    ]

    operations = [
        migrations.AlterField(
            model_name='householdquotient',
            name='quotient',
            field=guichet.common.crypto.EncryptedIntegerField(),
        ),
        migrations.AlterField(
            model_name='householdquotient',
            name='resources_cents',
            field=guichet.common.crypto.EncryptedIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(encrypt, decrypt, elidable=False),
    ]
