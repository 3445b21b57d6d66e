"""Encrypted model fields (apps/core/crypto.py) and the admin's write-only secret input.

The attribute holds the plaintext; the column holds "fernet:<token>". Lookups other than
`isnull` are refused: a query on ciphertext would silently match nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.apps import apps
from django.core.exceptions import FieldError
from django.db import connection, models, transaction

from .crypto import is_encrypted, secret_decrypt, secret_encrypt, secret_fingerprint, secret_rotate


class _EncryptedMixin:
    def get_lookup(self, lookup_name: str):
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted at rest: filter on another "
                f"column (only `isnull` is supported here)."
            )
        return super().get_lookup(lookup_name)

    def value_to_string(self, obj: models.Model) -> str | None:
        # dumpdata writes the ciphertext, never the plaintext; loaddata reads it back (to_python).
        return self.get_prep_value(self.value_from_object(obj))


class EncryptedTextField(_EncryptedMixin, models.TextField):
    """A secret string. Empty stays empty (nothing to hide, and "no secret" stays visible)."""

    description = "Text encrypted at rest"

    def from_db_value(self, value: str | None, expression, connection) -> str | None:
        return value if value is None else secret_decrypt(value)

    def to_python(self, value: Any) -> str | None:
        if isinstance(value, str) and is_encrypted(value):
            return secret_decrypt(value)
        return super().to_python(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return secret_encrypt(value)


class EncryptedJSONField(_EncryptedMixin, models.TextField):
    """A JSON value (e.g. a list of secrets) encrypted as a whole, so even the count is hidden.
    No form field: admins edit it through purpose-made write-only fields."""

    description = "JSON encrypted at rest"

    def from_db_value(self, value: str | None, expression, connection) -> Any:
        return value if value is None else json.loads(secret_decrypt(value))

    def to_python(self, value: Any) -> Any:
        return json.loads(secret_decrypt(value)) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> str | None:
        value = models.Field.get_prep_value(self, value)
        return None if value is None else secret_encrypt(json.dumps(value))

    def formfield(self, **kwargs: Any) -> None:
        return None


class WriteOnlySecretField(forms.CharField):
    """A password-style input that never renders the stored value; empty means "keep"."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", True)
        super().__init__(**kwargs)

    def has_changed(self, initial: Any, data: Any) -> bool:
        # The initial value is never sent to the page: anything typed is a change, nothing is not.
        return bool(data)


def secret_summary(secrets: list[str]) -> str:
    """What the admin may show of stored secrets: how many, and short fingerprints."""
    if not secrets:
        return "No secret is set."
    prints = ", ".join(f"…{secret_fingerprint(s)}" for s in secrets)
    count = "1 secret is set" if len(secrets) == 1 else f"{len(secrets)} secrets are set (newest first)"
    return f"{count}; SHA-256 fingerprint {prints}."


@dataclass(frozen=True)
class ColumnRotation:
    label: str  # "connectors.Connector.secret"
    rotated: int  # re-encrypted with the first key (or encrypted, if it was legacy plaintext)
    current: int  # already encrypted with the first key: untouched
    empty: int


def encrypted_columns_rotate() -> list[ColumnRotation]:
    """Re-encrypt every stored secret with the first key of KEFU_SECRET_KEYS (idempotent)."""
    return [
        _column_rotate(model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, _EncryptedMixin)
    ]


def _column_rotate(model: type[models.Model], field: models.Field) -> ColumnRotation:
    quote = connection.ops.quote_name
    table, column, pk = quote(model._meta.db_table), quote(field.column), quote(model._meta.pk.column)
    rotated = current = empty = 0
    # Raw SQL: the ORM would hand back plaintext. FOR UPDATE: an admin saving meanwhile waits.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk}, {column} FROM {table} FOR UPDATE")  # names quoted above
        for pk_value, stored in cursor.fetchall():
            if not stored:
                empty += 1
            elif (new := secret_rotate(stored)) is None:
                current += 1
            else:
                cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", [new, pk_value])
                rotated += 1
    return ColumnRotation(f"{model._meta.label}.{field.name}", rotated, current, empty)
