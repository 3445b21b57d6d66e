"""Staff roles as groups (apps/console/roles.py): agent, supervisor, admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_create(apps, schema_editor):
    from apps.console.roles import roles_sync

    # Permissions are normally made after the last migration (post_migrate); make them now so
    # the groups can hold them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(
        group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission")
    )


def roles_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["agent", "supervisor", "admin"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("console", "0001_initial"),
        ("customers", "0002_customer_email_verified"),
        ("conversations", "0001_initial"),
        ("knowledge", "0001_initial"),
        ("assistant", "0001_initial"),
        ("connectors", "0003_secrets_encrypted"),
        ("webhooks", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_create, roles_delete)]
