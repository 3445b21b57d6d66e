"""Connector.secret encrypted at rest: the column becomes text holding "fernet:<token>"."""

from django.db import migrations

import apps.core.fields


def encrypt(apps, schema_editor):
    # The historical field reads legacy plaintext as is and encrypts on write.
    Connector = apps.get_model("connectors", "Connector")
    for pk, secret in Connector.objects.values_list("pk", "secret"):
        if secret:
            Connector.objects.filter(pk=pk).update(secret=secret)


def decrypt(apps, schema_editor):
    Connector = apps.get_model("connectors", "Connector")
    with schema_editor.connection.cursor() as cursor:
        for pk, secret in Connector.objects.values_list("pk", "secret"):
            cursor.execute("UPDATE connectors_connector SET secret = %s WHERE id = %s", [secret, pk])


class Migration(migrations.Migration):
    dependencies = [("connectors", "0002_tool_trust")]

    operations = [
        migrations.AlterField(
            model_name="connector",
            name="secret",
            field=apps.core.fields.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
