"""The demo help-center knowledge bases: Markdown articles of a fictional shop, Pebble & Pine, in
English (`help-center`, KB_DEFAULT_SLUG) and Simplified Chinese (`help-center-zh`): the same 25
articles under the same file names, so a Chinese article's external id (`demo:<slug>`) and its
url's last part are the English article's slug (PROTOCOL.md §6). Each English article ends with a
"Customers also ask" section: how customers word its questions (retrieval.py ALSO_ASK_HEADING),
written from the article's own topics, never copied from the dev set (apps/assistant/evalsets)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from .ingestion import documents_index_inline
from .languages import EN, ZH_HANS, language_normalise
from .models import KnowledgeBase
from .services import document_upsert, knowledge_base_get_or_create

ARTICLES_DIR = Path(__file__).resolve().parent / "demo_articles"
ARTICLES_DIRS = {EN: ARTICLES_DIR, ZH_HANS: Path(__file__).resolve().parent / "demo_articles_zh"}
DEMO_URL = "https://help.pebbleandpine.example/articles/{slug}"
DEMO_URLS = {EN: DEMO_URL, ZH_HANS: "https://help.pebbleandpine.example/zh-hans/articles/{slug}"}
DEMO_NAMES = {EN: "Pebble & Pine help center", ZH_HANS: "Pebble & Pine 帮助中心"}
DEMO_SLUG_SUFFIX = {EN: "", ZH_HANS: "-zh"}
DEMO_PREFIX = "demo:"


def demo_slug(language: str = EN) -> str:
    """`help-center` (KB_DEFAULT_SLUG) for English, `help-center-zh` for Chinese."""
    return settings.KB_DEFAULT_SLUG + DEMO_SLUG_SUFFIX[language_normalise(language)]


def demo_knowledge_base_load(*, language: str = EN, slug: str | None = None) -> KnowledgeBase:
    """Create or update the demo knowledge base of `language` (slug `demo_slug(language)` unless
    given), indexing in this process. Idempotent: unchanged articles do nothing (the model is not
    even loaded); articles removed from the folder are removed from the knowledge base."""
    language = language_normalise(language)
    kb = knowledge_base_get_or_create(slug=slug or demo_slug(language), name=DEMO_NAMES[language],
                                      language=language)
    changed, external_ids = [], []
    for path in sorted(ARTICLES_DIRS[language].glob("*.md")):
        external_id = DEMO_PREFIX + path.stem
        external_ids.append(external_id)
        doc, needs = document_upsert(
            kb=kb,
            external_id=external_id,
            filename=path.name,
            data=path.read_bytes(),
            source_url=DEMO_URLS[language].format(slug=path.stem),
        )
        if needs:
            changed.append(doc)
    kb.documents.filter(external_id__startswith=DEMO_PREFIX).exclude(external_id__in=external_ids).delete()
    documents_index_inline(changed)
    return kb
