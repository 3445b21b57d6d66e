"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) through `cryptography`'s MultiFernet.

Keys come from KEFU_SECRET_KEYS (comma-separated Fernet keys): the first encrypts, every one
decrypts. Rotation: put a new key first, run `python manage.py secrets_rotate`, then drop the
old key. Unset (development), one key is derived from DJANGO_SECRET_KEY with HKDF-SHA256, so
`make run` needs nothing; production refuses to start without KEFU_SECRET_KEYS, because
changing DJANGO_SECRET_KEY would then make every stored secret unreadable.

Stored values read "fernet:<token>"; a value without the prefix is legacy plaintext, returned
as is so that migrations can encrypt it.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "fernet:"
GENERATE_HINT = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
# HKDF's `info`: binds the derived key to this one use of DJANGO_SECRET_KEY.
_DERIVE_INFO = b"kefu secrets at rest v1"


class SecretUndecryptable(ImproperlyConfigured):
    """A stored secret that no key in KEFU_SECRET_KEYS opens."""


@lru_cache(maxsize=4)
def derived_key(secret_key: str) -> str:
    """The development key: HKDF-SHA256 of DJANGO_SECRET_KEY (no salt), as a Fernet key."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVE_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw).decode()


def _configured_keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in getattr(settings, "KEFU_SECRET_KEYS", []) if k.strip())
    return keys or (derived_key(settings.SECRET_KEY),)


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    """Built at first use, not at settings import; keyed by the keys so an override takes effect."""
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"KEFU_SECRET_KEYS entry {position} is not a Fernet key (32 url-safe base64-encoded "
                f"bytes): generate one with {GENERATE_HINT}"
            ) from exc
    return MultiFernet(fernets), fernets[0]


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def secret_encrypt(plaintext: str) -> str:
    multi, _ = _fernets(_configured_keys())
    return PREFIX + multi.encrypt(plaintext.encode()).decode()


def secret_decrypt(stored: str) -> str:
    """The plaintext of a stored value; a value without the prefix (legacy plaintext) as is."""
    if not is_encrypted(stored):
        return stored
    multi, _ = _fernets(_configured_keys())
    try:
        return multi.decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SecretUndecryptable(
            "A stored secret cannot be decrypted with any key in KEFU_SECRET_KEYS: put back the key "
            "it was encrypted with (drop an old key only after `python manage.py secrets_rotate`)."
        ) from exc


def secret_rotate(stored: str) -> str | None:
    """`stored` re-encrypted with the first key, or None if it already is (idempotent rotation).
    Legacy plaintext is encrypted; an empty value stays empty."""
    if not stored:
        return None
    multi, primary = _fernets(_configured_keys())
    if not is_encrypted(stored):
        return secret_encrypt(stored)
    token = stored[len(PREFIX) :].encode()
    try:
        primary.decrypt(token)
        return None
    except InvalidToken:
        pass
    try:
        return PREFIX + multi.rotate(token).decode()
    except InvalidToken as exc:
        raise SecretUndecryptable(
            "A stored secret cannot be decrypted with any key in KEFU_SECRET_KEYS: add back the "
            "key it was encrypted with, then run secrets_rotate again."
        ) from exc


def secret_fingerprint(plaintext: str) -> str:
    """The last 4 hex characters of SHA-256: tells two secrets apart, reveals nothing usable."""
    return hashlib.sha256(plaintext.encode()).hexdigest()[-4:]
