from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("connectors", "0002_tool_trust")]

    operations: list = []
