"""ground() in the customer's language: a Chinese question is answered from the Chinese help
center (help-center-zh), citing the Chinese article whose url ends in the English slug; a
language with no help center falls back to the default one and says so."""

import pytest

from apps.assistant.grounding import ground, knowledge_base_for_language
from apps.knowledge.demo import ARTICLES_DIRS, DEMO_PREFIX, DEMO_URLS
from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.services import document_upsert, knowledge_base_get_or_create

pytestmark = pytest.mark.django_db(transaction=True)

SLUGS = ("returns-policy", "gift-cards", "payment-methods", "tracking-your-order")


def _load(slug: str, language: str) -> None:
    kb = knowledge_base_get_or_create(slug=slug, language=language)
    docs = [document_upsert(kb=kb, external_id=DEMO_PREFIX + s, filename=f"{s}.md",
                            data=(ARTICLES_DIRS[language] / f"{s}.md").read_bytes(),
                            source_url=DEMO_URLS[language].format(slug=s))[0] for s in SLUGS]
    documents_index_inline(docs)


@pytest.fixture
def help_centers(settings):
    settings.KB_DEFAULT_SLUG = "help-center"
    _load("help-center", "en")
    _load("help-center-zh", "zh-hans")


def test_a_chinese_question_is_answered_from_the_chinese_help_center(help_centers):
    grounding = ground("礼品卡的有效期是多久？", language="zh-CN")
    assert (grounding.kb_slug, grounding.language, grounding.language_fallback) == (
        "help-center-zh", "zh-hans", False)
    assert grounding.decision == "answer"
    citation = grounding.passages[0].citation(1)
    assert citation["title"] == "礼品卡"
    assert citation["url"] == "https://help.pebbleandpine.example/zh-hans/articles/gift-cards"


def test_english_is_answered_from_the_english_help_center(help_centers):
    grounding = ground("how long is a gift card valid", language="en")
    assert (grounding.kb_slug, grounding.language_fallback) == ("help-center", False)
    assert grounding.passages[0].url == "https://help.pebbleandpine.example/articles/gift-cards"


def test_a_language_without_a_help_center_falls_back_to_the_default(help_centers):
    assert knowledge_base_for_language("fr") == ("help-center", "en", True)
    grounding = ground("how long is a gift card valid", language="fr")
    assert (grounding.kb_slug, grounding.language, grounding.language_fallback) == (
        "help-center", "en", True)
    assert grounding.passages[0].external_id == "demo:gift-cards"


def test_an_off_topic_chinese_question_is_handed_over(help_centers):
    assert ground("明天北京天气怎么样", language="zh-hans").decision == "handover"


def test_the_chinese_demo_help_center_has_the_english_articles_slugs():
    english = sorted(p.name for p in ARTICLES_DIRS["en"].glob("*.md"))
    assert sorted(p.name for p in ARTICLES_DIRS["zh-hans"].glob("*.md")) == english
    assert len(english) == 25
