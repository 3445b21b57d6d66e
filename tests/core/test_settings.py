"""Settings come from environment variables; with URLs given, nothing embedded starts."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "db": [db["ENGINE"], db["HOST"], db["PORT"], db["NAME"], db["USER"]],
    "redis": settings.REDIS_URL,
    "layer": settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0],
    "broker": settings.CELERY_BROKER_URL,
    "port": settings.PORT, "host": settings.HOST,
    "llm": settings.LLM_PROVIDER, "embedding": settings.EMBEDDING_PROVIDER,
}))
"""


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=base | env,
                          capture_output=True, text=True, timeout=60)


def test_urls_from_the_environment_are_used_and_nothing_embedded_starts(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": "postgres://kefu:pw@db.internal:6543/kefu_prod",
        "REDIS_URL": "redis://cache.internal:6380/2",
        "KEFU_VAR_DIR": str(tmp_path / "var"),
        "PORT": "9001",
        "HOST": "0.0.0.0",
    }

    result = run_python(PRINT_SETTINGS, env)

    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert parsed["db"] == ["django.db.backends.postgresql", "db.internal", 6543, "kefu_prod", "kefu"]
    assert parsed["redis"] == "redis://cache.internal:6380/2"
    assert parsed["layer"] == {"address": "redis://cache.internal:6380/2", "socket_timeout": 15,
                               "max_connections": 64, "driver_info": None}
    assert parsed["broker"] == "redis://cache.internal:6380/2"
    assert (parsed["port"], parsed["host"]) == (9001, "0.0.0.0")
    assert (parsed["llm"], parsed["embedding"]) == ("builtin", "local")
    assert not (tmp_path / "var").exists()


def test_production_settings_pass_the_deploy_check_with_the_documented_variables(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": "postgres://kefu:pw@127.0.0.1:1/kefu",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DJANGO_SECRET_KEY": "x7#Lq9!vR2mZ@pW4sT6^yU8&iO0*aS3dF5gH1jK7lZ9xC2vB4nM6",
        "DJANGO_ALLOWED_HOSTS": "kefu.example.com",
        "WIDGET_IDENTITY_SECRET": "a-long-random-identity-secret-of-40-chars",
        "DEMO_WEBHOOK_SECRET": "whsec_dGVzdC1wcm9kdWN0aW9uLXdlYmhvb2stc2VjcmV0LTMy",
        "KEFU_SECRET_KEYS": "k4Yq6kQn2l0m1nZ8v0m2y3u5w7x9z1B3D5F7H9J1L3N=",
        "WIDGET_JWT_SECRET": "a-different-long-random-jwt-secret-of-40ch",
        "KEFU_VAR_DIR": str(tmp_path / "var"),
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"} | env,
        capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": "postgres://kefu:pw@127.0.0.1:1/kefu",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DJANGO_ALLOWED_HOSTS": "kefu.example.com",
        "WIDGET_IDENTITY_SECRET": "a-long-random-identity-secret-of-40-chars",
        "KEFU_VAR_DIR": str(tmp_path / "var"),
    }

    result = run_python("import django; django.setup()", env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
