from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("connectors", "0001_initial")]

    operations: list = []
