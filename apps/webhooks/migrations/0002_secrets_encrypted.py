"""Webhook secrets encrypted at rest: a source's list of secrets becomes one encrypted JSON
list (its count hidden too), a subscriber's secret an encrypted text."""

from django.db import migrations

import apps.core.fields


def encrypt(apps, schema_editor):
    # Historical fields read legacy plaintext as is and encrypt on write.
    WebhookSource = apps.get_model("webhooks", "WebhookSource")
    for pk, plaintext in WebhookSource.objects.values_list("pk", "secrets_plaintext"):
        WebhookSource.objects.filter(pk=pk).update(secrets=list(plaintext or []))
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for pk, secret in WebhookEndpoint.objects.values_list("pk", "secret"):
        if secret:
            WebhookEndpoint.objects.filter(pk=pk).update(secret=secret)


def decrypt(apps, schema_editor):
    WebhookSource = apps.get_model("webhooks", "WebhookSource")
    for pk, secrets in WebhookSource.objects.values_list("pk", "secrets"):
        WebhookSource.objects.filter(pk=pk).update(secrets_plaintext=list(secrets))
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    with schema_editor.connection.cursor() as cursor:
        for pk, secret in WebhookEndpoint.objects.values_list("pk", "secret"):
            cursor.execute("UPDATE webhooks_webhookendpoint SET secret = %s WHERE id = %s", [secret, pk])


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="webhooksource", old_name="secrets", new_name="secrets_plaintext"),
        migrations.AddField(
            model_name="webhooksource",
            name="secrets",
            field=apps.core.fields.EncryptedJSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=apps.core.fields.EncryptedTextField(
                help_text="A Standard Webhooks secret: whsec_ + base64."
            ),
        ),
        migrations.RunPython(encrypt, decrypt),
        migrations.RemoveField(model_name="webhooksource", name="secrets_plaintext"),
    ]
