"""The environment a development process needs: the embedded services' URLs for what is unset.

Settings never start anything (config/settings/base.py): a development entry point calls
`environment_prepare()` before Django loads its settings. This process then holds a lease on
each embedded server it uses, so concurrent runs share them and the last to exit stops them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEVELOPMENT_SETTINGS = "config.settings.base"


def var_dir() -> Path:
    """KEFU_VAR_DIR as settings read it: where the embedded servers keep their data."""
    return Path(os.environ.get("KEFU_VAR_DIR", str(REPO / "var"))).resolve()


def environment_prepare(*, settings_module: str | None = DEVELOPMENT_SETTINGS) -> dict[str, str]:
    """Start (or attach to) the embedded PostgreSQL/Redis for each of DATABASE_URL/REDIS_URL that is
    unset, and export their URLs (and DJANGO_SETTINGS_MODULE, when unset and `settings_module` is
    given) for this process and its children. Returns what it exported."""
    from .embedded import ensure_services

    database = not os.environ.get("DATABASE_URL")
    redis = not os.environ.get("REDIS_URL")
    exported = ensure_services(var_dir(), database=database, redis=redis) if database or redis else {}
    if settings_module and "DJANGO_SETTINGS_MODULE" not in os.environ:
        exported["DJANGO_SETTINGS_MODULE"] = settings_module
    os.environ.update(exported)
    return exported
