"""IBANs and BICs of creditors and mandates, and the generated SEPA files, encrypted at rest
(ADR 0011): every existing value is encrypted with the field key (needed only when rows exist)."""

from django.db import migrations

import guichet.common.crypto

encrypt, decrypt = guichet.common.crypto.migration_encrypt(
    ("water_creditor", "iban", "water.creditor.iban"),
    ("water_creditor", "bic", "water.creditor.bic"),
    ("water_mandate", "iban", "water.mandate.iban"),
    ("water_mandate", "bic", "water.mandate.bic"),
    ("water_debitrun", "xml", "water.debitrun.xml"),
)


class Migration(migrations.Migration):

    dependencies = [
        ('water', '0002_fewer_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='creditor',
            name='bic',
            field=guichet.common.crypto.EncryptedTextField(blank=True, max_length=11),
        ),
        migrations.AlterField(
            model_name='creditor',
            name='iban',
            field=guichet.common.crypto.EncryptedTextField(max_length=34),
        ),
        migrations.AlterField(
            model_name='debitrun',
            name='xml',
            field=guichet.common.crypto.EncryptedBinaryField(),
        ),
        migrations.AlterField(
            model_name='mandate',
            name='bic',
            field=guichet.common.crypto.EncryptedTextField(blank=True, max_length=11),
        ),
        migrations.AlterField(
            model_name='mandate',
            name='iban',
            field=guichet.common.crypto.EncryptedTextField(max_length=34),
        ),
        migrations.RunPython(encrypt, decrypt, elidable=False),
    ]
