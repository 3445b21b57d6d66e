# Tools never let the model choose whose data; writes always ask (issue 15).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="tool",
            name="confirmation_waived_reason",
            field=models.TextField(
                blank=True,
                help_text="Only for POST/PUT/PATCH/DELETE tools that change nothing the customer would want to "
                "approve (a search sent as POST, say): why it may run without asking. Empty: it asks.",
            ),
        ),
        migrations.AddField(
            model_name="toolcall",
            name="requested_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="tool",
            name="requires_confirmation",
            field=models.BooleanField(
                default=False,
                help_text="Ask the customer before a GET/HEAD call too. Every other method (a write) always "
                "asks, whatever this says, unless the tool is marked safe below.",
            ),
        ),
        migrations.AlterField(
            model_name="toolcall",
            name="detail",
            field=models.TextField(blank=True, help_text="The customer-safe description."),
        ),
    ]
