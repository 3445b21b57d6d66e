"""Production settings: everything secret or host-specific must come from the environment.

The environment is checked BEFORE base.py is imported: base starts an embedded Postgres and Redis
when DATABASE_URL / REDIS_URL are unset, which must never happen on a production host.
"""

import os

from django.core.exceptions import ImproperlyConfigured

# Published in this repository: a production process that used them could be impersonated.
_DEV_DEFAULTS = {
    "DJANGO_SECRET_KEY": "kefu-dev-insecure-secret-key-change-me-in-production",
    "WIDGET_IDENTITY_SECRET": "kefu-demo-identity-secret",
    "DEMO_WEBHOOK_SECRET": "whsec_a2VmdS1kZW1vLXdlYmhvb2stc2VjcmV0LTMyYnl0ZXM=",
}
_REQUIRED = {
    "DJANGO_SECRET_KEY": "a long random string (widget tokens and sessions are signed with it)",
    "WIDGET_IDENTITY_SECRET": "a long random string shared with your site's server (user_hash, user_jwt)",
    "DEMO_WEBHOOK_SECRET": "a Standard Webhooks secret (whsec_ + base64 of 32 random bytes)",
    "DATABASE_URL": "postgres://USER:PASSWORD@HOST:5432/NAME (PostgreSQL with pgvector)",
    "REDIS_URL": "redis://HOST:6379/0 (channel layer, Celery broker, rate limits)",
    "DJANGO_ALLOWED_HOSTS": "the public host names, comma-separated, e.g. kefu.example.com",
}


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
    return problems


if _problems := _environment_problems():
    raise ImproperlyConfigured(
        "config.settings.production refuses to start:\n  - " + "\n  - ".join(_problems)
    )

# JSON logs unless LOG_FORMAT says otherwise; read by base's logging section.
os.environ.setdefault("LOG_FORMAT", "json")

from .base import *  # noqa: E402,F403
from .base import env  # noqa: E402

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
WIDGET_IDENTITY_SECRET = env.str("WIDGET_IDENTITY_SECRET")

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

# The demo shop page and the unauthenticated /ws/echo/ socket exist in development only.
KEFU_DEMO_PAGES = env.bool("KEFU_DEMO_PAGES", default=False)
# /healthz details (the checks) only to staff or the HEALTHZ_TOKEN header, never by address.
HEALTHZ_DETAILS_TO_LOOPBACK = False

# Abuse limits (apps/core/ratelimit.py); each overridable, empty switches one off.
RATELIMIT_SESSION_IP = env.str("RATELIMIT_SESSION_IP", default="30/minute;300/hour")
RATELIMIT_MESSAGE_CUSTOMER = env.str("RATELIMIT_MESSAGE_CUSTOMER", default="20/minute")
RATELIMIT_ANSWER_CUSTOMER_HOUR = env.str("RATELIMIT_ANSWER_CUSTOMER_HOUR", default="60/hour")
