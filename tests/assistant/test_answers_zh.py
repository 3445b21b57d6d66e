"""The builtin provider answering a Chinese customer from the Chinese demo help center
(help-center-zh): it quotes the article's own Chinese sentences (Chinese writes no spaces, so a
sentence is not counted in space-separated words), compares them with the question using the
help center's own model (multilingual-e5-small, not the English one), and never quotes an
article's 顾客还会问 list (it finds the article; the article's other sections answer)."""

import re

import pytest

from apps.assistant.phrases import phrase
from apps.assistant.providers import provider_get
from apps.assistant.providers.base import Turn
from apps.assistant.providers.builtin import _embedder, _quotable
from apps.knowledge.demo import ARTICLES_DIRS
from apps.knowledge.embeddings import configured_embedder
from apps.knowledge.sentences import sentence_split

ASKS_HEADING = "## 顾客还会问"


def _asks() -> set[str]:
    """Every item of every Chinese article's 顾客还会问 list."""
    items = set()
    for path in ARTICLES_DIRS["zh-hans"].glob("*.md"):
        section = path.read_text(encoding="utf-8").split(ASKS_HEADING, 1)[1]
        items |= {line[2:].strip() for line in section.splitlines() if line.startswith("- ")}
    return items


async def _ask(question: str) -> tuple[str, list[dict], str | None]:
    text, citations, outcome = "", [], None
    async for chunk in provider_get().answer(Turn(conversation_id="c", question=question,
                                                  language="zh-hans")):
        text += chunk.text
        citations = chunk.citations if chunk.citations is not None else citations
        outcome = chunk.outcome or outcome
    return text, citations, outcome


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("question", "title", "says"),
    [
        ("退款一般几天能到账", "退款", "5 个工作日"),
        ("礼品卡的有效期是多久", "礼品卡", "24 个月"),
        ("怎么查我的包裹到哪了", "查询订单物流", "物流单号"),
    ],
)
async def test_a_chinese_question_is_answered_with_the_article_s_own_sentences(
    demo_kb_zh, settings, question, title, says
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    text, citations, outcome = await _ask(question)

    assert (outcome, [c["title"] for c in citations]) == ("answered", [title])
    quoted = re.fullmatch(r"(.+) \[1\]", text).group(1)
    assert says in quoted and citations[0]["snippet"] == quoted
    article = (ARTICLES_DIRS["zh-hans"] / f"{citations[0]['url'].rsplit('/', 1)[1]}.md").read_text("utf-8")
    own = {re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", s) for s in sentence_split(article.replace("**", ""))}
    rest = quoted
    for sentence in sorted(own, key=len, reverse=True):  # the article's own sentences, whole
        rest = rest.replace(sentence, "")
    assert rest.strip() == ""
    assert not any(item in quoted for item in _asks())


@pytest.mark.django_db
async def test_a_question_worded_as_a_customers_also_ask_item_is_answered_by_the_article_not_the_list(
    demo_kb_zh, settings
):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    assert "退款要多久" in _asks()
    text, citations, outcome = await _ask("退款要多久")

    assert (outcome, [c["title"] for c in citations]) == ("answered", ["退款"])
    assert "5 个工作日" in text and not any(item in text for item in _asks())


@pytest.mark.django_db
async def test_an_off_topic_chinese_question_is_declined(demo_kb_zh, settings):
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    text, citations, outcome = await _ask("帮我订一张去上海的机票")

    assert (outcome, citations) == ("declined", [])
    assert text == phrase("dont_know", "zh-hans") == "抱歉，这个问题我不清楚。需要为您转接人工客服吗？"


def test_chinese_sentences_are_quotable_without_spaces():
    text = "工作日指周一至周五，不含英国法定假日。免运费。\n\n- 礼品卡，"
    assert _quotable(text) == ["工作日指周一至周五，不含英国法定假日。"]


def test_a_chinese_help_center_s_sentences_are_compared_by_its_own_model_and_english_by_the_configured_one():
    assert (_embedder("zh-hans").model, _embedder("en")) == ("multilingual-e5-small", configured_embedder())
