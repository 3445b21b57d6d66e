from django.db import migrations

HOW_TO_GET_PGVECTOR = (
    "The PostgreSQL server at DATABASE_URL has no 'vector' extension (pgvector), which Kefu's "
    "knowledge base needs. Install pgvector on that server (https://github.com/pgvector/pgvector: "
    "e.g. the postgresql-<major>-pgvector package), or unset DATABASE_URL to use Kefu's embedded "
    "PostgreSQL 18, which ships with it."
)


def create_vector_extension(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is None:
            raise RuntimeError(HOW_TO_GET_PGVECTOR)
        cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(create_vector_extension, migrations.RunPython.noop)]
