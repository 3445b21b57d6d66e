"""Settings read the environment and nothing else (issue 17): importing any settings module starts
no process, writes no file and changes no environment variable; the development stack
(apps/devstack) is what starts the embedded services, and only it imports them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.process import REPO

SETTINGS_MODULES = sorted(
    f"config.settings.{p.stem}" for p in (REPO / "config" / "settings").glob("*.py") if p.stem != "__init__"
)

# Records every way a Python process starts another, then loads the settings module fully.
IMPORT_SETTINGS = """
import importlib, json, os, subprocess, sys
import psutil

started = []
def record(name, real):
    def wrapper(*args, **kwargs):
        started.append([name, repr(args)[:200]])
        return real(*args, **kwargs)
    return wrapper
subprocess.Popen.__init__ = record("Popen", subprocess.Popen.__init__)
for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp", "execv", "execve"):
    if hasattr(os, name):
        setattr(os, name, record(name, getattr(os, name)))

before = dict(os.environ)
module = os.environ["DJANGO_SETTINGS_MODULE"]
importlib.import_module(module)
after_import = dict(os.environ)
from django.conf import settings
settings.INSTALLED_APPS  # Django's own settings loading, as every entry point does
def changed(a, b):
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
print(json.dumps({
    "started": started,
    "children": [p.pid for p in psutil.Process().children(recursive=True)],
    "environ_changed": changed(before, after_import),
    "environ_changed_by_django": changed(after_import, os.environ),
    "devstack_imported": sorted(m for m in sys.modules if m.startswith("apps.devstack")),
    "installed": [a for a in settings.INSTALLED_APPS if a.startswith("apps.")],
}))
"""

UNREACHABLE = {"DATABASE_URL": "postgres://kefu@127.0.0.1:1/kefu", "REDIS_URL": "redis://127.0.0.1:1/0"}
# What production requires besides the URLs (other modules ignore these).
SECRETS = {
    "DJANGO_SECRET_KEY": "x7#Lq9!vR2mZ@pW4sT6^yU8&iO0*aS3dF5gH1jK7lZ9xC2vB4nM6",
    "WIDGET_IDENTITY_SECRET": "a-long-random-identity-secret-for-the-tests",
    "DEMO_WEBHOOK_SECRET": "whsec_dGVzdC1wcm9kdWN0aW9uLXdlYmhvb2stc2VjcmV0LTMy",
    "DJANGO_ALLOWED_HOSTS": "kefu.example.com",
    "KEFU_SECRET_KEYS": "Q3l0b2dyYXBoeS10ZXN0LWtleS1vZi0zMi1ieXRlcyE=",
}


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=base | env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", SETTINGS_MODULES)
def test_importing_settings_starts_nothing_writes_nothing_and_leaves_the_environment(tmp_path, module):
    var = tmp_path / "var"
    var.mkdir()
    env = {**SECRETS, **UNREACHABLE, "DJANGO_SETTINGS_MODULE": module, "KEFU_VAR_DIR": str(var)}

    result = run_python(IMPORT_SETTINGS, env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["started"] == []
    assert report["children"] == []
    assert report["environ_changed"] == []
    assert report["environ_changed_by_django"] in ([], ["TZ"])  # Django sets TZ from TIME_ZONE itself
    assert list(var.iterdir()) == []
    assert report["devstack_imported"] == []
    assert ("apps.devstack" in report["installed"]) is (module != "config.settings.production")


@pytest.mark.parametrize("module", ["config.settings.base", "config.settings.test"])
@pytest.mark.parametrize("unset", [["DATABASE_URL"], ["REDIS_URL"], ["DATABASE_URL", "REDIS_URL"]])
def test_development_settings_without_urls_say_to_use_the_development_stack(tmp_path, module, unset):
    env = {**UNREACHABLE, "DJANGO_SETTINGS_MODULE": module, "KEFU_VAR_DIR": str(tmp_path / "var")}
    for name in unset:
        del env[name]

    result = run_python("import django; django.setup()", env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set" in result.stderr
    for entry_point in ("make run", "make test", "python -m apps.devstack manage"):
        assert entry_point in result.stderr
    assert not (tmp_path / "var").exists()  # nothing embedded was started


@pytest.mark.parametrize("entry", ["manage.py", "config/asgi.py", "config/celery.py"])
def test_manage_asgi_and_celery_default_to_the_production_settings(entry):
    source = (REPO / entry).read_text()

    assert 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")' in source


def test_manage_py_without_settings_refuses_as_production_and_points_at_the_development_stack(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "KEFU_VAR_DIR": str(tmp_path / "v")}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert "config.settings.production refuses to start" in result.stderr
    assert "python -m apps.devstack manage" in result.stderr
    assert not (tmp_path / "v").exists()


def test_nothing_in_apps_or_config_imports_the_development_stack():
    importers = [
        str(path.relative_to(REPO))
        for folder in ("apps", "config")
        for path in (REPO / folder).rglob("*.py")
        if "apps/devstack" not in path.as_posix() and "apps.devstack" in _imports(path)
    ]

    assert importers == []


def _imports(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines()
                     if line.lstrip().startswith(("import ", "from ")))


def test_devstack_manage_shares_the_running_servers_and_selects_the_development_settings():
    """`python -m apps.devstack` with the URLs unset attaches to the embedded servers this run uses
    (KEFU_VAR_DIR): same URLs, a lease while it runs, and the servers keep running after it."""
    from apps.devstack.environment import var_dir
    from tests.support import devstack

    if "DATABASE_URL" not in devstack.exported or "REDIS_URL" not in devstack.exported:
        pytest.skip("this run was given external DATABASE_URL/REDIS_URL: no embedded servers to share")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    show = (
        "import json, os, pathlib; from django.conf import settings; "
        "leases = pathlib.Path(os.environ['KEFU_VAR_DIR'], 'run', 'redis.clients'); "
        "print(json.dumps({'urls': [os.environ.get('DATABASE_URL'), settings.REDIS_URL], "
        "'settings': os.environ['DJANGO_SETTINGS_MODULE'], 'clients': json.loads(leases.read_text())}))"
    )
    env["KEFU_VAR_DIR"] = str(var_dir())

    result = subprocess.run([sys.executable, "-m", "apps.devstack", "manage", "shell", "-c", show],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.splitlines()[-1])
    assert shown["urls"] == [devstack.exported["DATABASE_URL"], devstack.exported["REDIS_URL"]]
    assert shown["settings"] == "config.settings.base"
    assert os.getpid() in shown["clients"] and len(shown["clients"]) >= 2  # this run and the wrapper
    assert redis.Redis.from_url(devstack.exported["REDIS_URL"]).ping() is True  # still ours


def test_devstack_without_a_command_prints_its_usage():
    result = subprocess.run([sys.executable, "-m", "apps.devstack"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 2
    assert "python -m apps.devstack manage" in result.stderr


def test_devstack_run_leaves_the_settings_module_to_the_program():
    """`run` serves any program, pytest included, whose own settings module (config.settings.test
    from pyproject.toml) must win; with both URLs given it starts nothing."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **UNREACHABLE}
    show = "import os; print(os.environ.get('DJANGO_SETTINGS_MODULE'), os.environ['DATABASE_URL'])"

    result = subprocess.run([sys.executable, "-m", "apps.devstack", "run", sys.executable, "-c", show],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", UNREACHABLE["DATABASE_URL"]]
