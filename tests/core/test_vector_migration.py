"""The migration that creates `vector` explains what to do when pgvector is missing."""

import importlib

import pytest
from django.db import connection

migration = importlib.import_module("apps.core.migrations.0001_vector_extension")


class ServerWithoutPgvector:
    """A schema editor whose server lists no `vector` among its available extensions."""

    class connection:  # noqa: N801 - mirrors schema_editor.connection
        @staticmethod
        def cursor():
            return FakeCursor()


class FakeCursor:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        self.sql = sql

    def fetchone(self):
        return None


def test_missing_pgvector_fails_with_instructions():
    with pytest.raises(RuntimeError) as error:
        migration.create_vector_extension(None, ServerWithoutPgvector)

    message = str(error.value)
    assert "no 'vector' extension (pgvector)" in message
    assert "unset DATABASE_URL" in message


@pytest.mark.django_db
def test_the_real_server_has_the_vector_extension_installed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
