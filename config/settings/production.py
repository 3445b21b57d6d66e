"""Production settings: everything secret or host-specific must come from the environment.

The environment is checked before base.py is imported, so every missing variable is named at once.
The default of manage.py, config.asgi and config.celery: development runs through apps/devstack.
"""

import base64
import os

from django.core.exceptions import ImproperlyConfigured

# Published in this repository: a production process that used them could be impersonated.
_DEV_DEFAULTS = {
    "DJANGO_SECRET_KEY": "kefu-dev-insecure-secret-key-change-me-in-production",
    "WIDGET_IDENTITY_SECRET": "kefu-demo-identity-secret",
    "DEMO_WEBHOOK_SECRET": "whsec_a2VmdS1kZW1vLXdlYmhvb2stc2VjcmV0LTMyYnl0ZXM=",
    "WIDGET_JWT_SECRET": "kefu-demo-jwt-secret-published-not-for-production",
}
_REQUIRED = {
    "DJANGO_SECRET_KEY": "a long random string (widget tokens and sessions are signed with it)",
    "WIDGET_IDENTITY_SECRET": "a long random string shared with your site's server (user_hash)",
    "DEMO_WEBHOOK_SECRET": "a Standard Webhooks secret (whsec_ + base64 of 32 random bytes)",
    "DATABASE_URL": "postgres://USER:PASSWORD@HOST:5432/NAME (PostgreSQL with pgvector)",
    "REDIS_URL": "redis://HOST:6379/0 (channel layer, Celery broker, rate limits)",
    "DJANGO_ALLOWED_HOSTS": "the public host names, comma-separated, e.g. kefu.example.com",
    # Not derived from DJANGO_SECRET_KEY here: rotating that key must not lose stored secrets.
    "KEFU_SECRET_KEYS": "one or more Fernet keys, comma-separated, newest first (connector and webhook "
    'secrets are encrypted with the first); generate one with python -c "from cryptography.fernet '
    'import Fernet; print(Fernet.generate_key().decode())"',
}


def _is_fernet_key(key: str) -> bool:
    """32 bytes, url-safe base64 (checked without importing `cryptography` into settings)."""
    try:
        return len(base64.urlsafe_b64decode(key.strip().encode())) == 32
    except ValueError:
        return False


def _environment_problems() -> list[str]:
    problems = []
    for name, hint in _REQUIRED.items():
        value = os.environ.get(name, "").strip()
        if not value:
            problems.append(f"{name} is not set: set it to {hint}")
        elif value == _DEV_DEFAULTS.get(name):
            problems.append(f"{name} is the published development default: set it to {hint}")
        elif name == "WIDGET_IDENTITY_SECRET" and len(value) < 32:
            # HS256 keys shorter than the hash are guessable offline from one user_hash (RFC 7518 §3.2).
            problems.append(f"{name} is shorter than 32 characters: set it to {hint}")
        elif name == "KEFU_SECRET_KEYS" and not all(map(_is_fernet_key, value.split(","))):
            problems.append(f"{name} holds something that is not a Fernet key: set it to {hint}")
    return problems + _jwt_secret_problems()


def _jwt_secret_problems() -> list[str]:
    """WIDGET_JWT_SECRET is optional (empty: no JWT sessions), but never the user_hash key: with
    one key, a user_hash for a chosen user id ("<header>.<payload>") is a JWT signature."""
    value = os.environ.get("WIDGET_JWT_SECRET", "").strip()
    hint = "a long random string, not WIDGET_IDENTITY_SECRET, shared with your site's server (user_jwt)"
    if not value:
        return []
    if value == _DEV_DEFAULTS["WIDGET_JWT_SECRET"]:
        return [f"WIDGET_JWT_SECRET is the published development default: set it to {hint}"]
    if value == os.environ.get("WIDGET_IDENTITY_SECRET", "").strip():
        return [f"WIDGET_JWT_SECRET equals WIDGET_IDENTITY_SECRET: set it to {hint}"]
    if len(value) < 32:
        return [f"WIDGET_JWT_SECRET is shorter than 32 characters: set it to {hint}"]
    return []


if _problems := _environment_problems():
    raise ImproperlyConfigured(
        "config.settings.production refuses to start:\n  - " + "\n  - ".join(_problems)
        + "\n(In development, run commands through the development stack instead: `make run`, "
        "`make test`, `python -m apps.devstack manage <command>` or `make manage ARGS='<command>'`.)"
    )

from apps.core.logging import logging_config  # noqa: E402

from .base import *  # noqa: E402,F403
from .base import INSTALLED_APPS, env  # noqa: E402

# No development stack (embedded servers, `kefu_run`, `demo_setup`) in production.
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "apps.devstack"]

# JSON logs unless LOG_FORMAT says otherwise.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
WIDGET_IDENTITY_SECRET = env.str("WIDGET_IDENTITY_SECRET")
WIDGET_JWT_SECRET = env.str("WIDGET_JWT_SECRET", default="")  # never base's published default

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Load balancers and Prometheus poll over plain HTTP inside the network: no redirect for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# No demo CRM/ERP in production: only the on-premises hosts named here escape the outbound policy.
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])

# The demo shop page and the unauthenticated /ws/echo/ socket exist in development only.
KEFU_DEMO_PAGES = env.bool("KEFU_DEMO_PAGES", default=False)
# /healthz details (the checks) only to staff or the HEALTHZ_TOKEN header, never by address.
HEALTHZ_DETAILS_TO_LOOPBACK = False

# Abuse limits (apps/core/ratelimit.py); each overridable, empty switches one off.
RATELIMIT_SESSION_IP = env.str("RATELIMIT_SESSION_IP", default="30/minute;300/hour")
RATELIMIT_MESSAGE_CUSTOMER = env.str("RATELIMIT_MESSAGE_CUSTOMER", default="20/minute")
RATELIMIT_ANSWER_CUSTOMER_HOUR = env.str("RATELIMIT_ANSWER_CUSTOMER_HOUR", default="60/hour")
