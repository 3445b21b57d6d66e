"""The builtin responder: for a question `ground()` decides to answer, the sentences of one article
closest to the question, in article order, cited with exactly what is quoted; a plain "don't know"
when the knowledge base does not answer, or when no sentence of the article is close enough."""

import re

import pytest

from apps.assistant.grounding import SEARCH_K, grounding_from
from apps.assistant.phrases import DONT_KNOW
from apps.assistant.providers import ProviderUnavailable, provider_get
from apps.assistant.providers.builtin import BuiltinProvider, compose
from apps.knowledge.models import Document
from apps.knowledge.retrieval import search
from apps.knowledge.sentences import sentence_split
from tests.support.passages import passage


def answer(question):
    """What the provider says for a question it is to answer: ground()'s decision (searched here in
    the test's connection; the provider's worker thread takes its own), then compose()."""
    passages = search(kb_slug="help-center", query=question, k=SEARCH_K, titles=True)
    grounding = grounding_from(passages, question=question)
    if grounding.decision != "answer":
        return (DONT_KNOW, []), grounding.passages
    return compose(question, grounding.passages, picked=grounding.picked), grounding.passages


def quoted_parts(text):
    """[(quoted text, n)] of an answer 'sentences [1] sentences [2]'."""
    return [(q.strip(), int(n)) for q, n in re.findall(r"(.+?)\s*\[(\d+)\]", text)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("Can I return bedding after opening it?", "Returns policy"),
        ("I forgot my password, how do I reset it?", "Password and sign-in problems"),
        ("Do you deliver to Canada?", "International shipping"),
        ("Please delete everything you store about me.", "Deleting your account and your data"),
        ("Can I cancel my order after placing it?", "Changing or cancelling an order"),
    ],
)
def test_an_answer_quotes_one_article_and_cites_exactly_the_quoted_text(demo_kb, question, title):
    (text, citations), passages = answer(question)

    parts = quoted_parts(text)
    assert [n for _, n in parts] == [1]
    assert [c["title"] for c in citations] == [title]
    quoted = parts[0][0]
    assert citations[0]["snippet"] == quoted
    source = next(p for p in passages if p.document_id == citations[0]["document_id"])
    # Every quoted sentence is the article's own words, and they come in the article's order.
    flat = " ".join(re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", s) for s in sentence_split(source.text))
    positions = [flat.find(s) for s in re.split(r"(?<=[.!?])\s+", quoted)]
    assert -1 not in positions and positions == sorted(positions)


@pytest.mark.django_db
def test_a_tapped_suggestion_its_title_is_answered_from_that_article(demo_kb):
    # A `clarify` suggestion, tapped, sends the article's title as the message (PROTOCOL.md §2).
    titles = list(Document.objects.filter(knowledge_base__slug=demo_kb).order_by("title")
                  .values_list("title", flat=True))
    assert len(titles) == 25
    cited = {title: [c["title"] for c in answer(title)[0][1]] for title in titles}
    assert cited == {title: [title] for title in titles}


@pytest.mark.django_db
def test_a_list_item_is_quoted_with_the_sentence_that_introduces_it(demo_kb):
    (text, _), _ = answer("Can I return bedding after opening it?")
    assert text == ("These items cannot be returned unless they are faulty: made-to-order and custom-size "
                    "items, bedding, pillows and duvets once the hygiene seal is opened, gift cards, "
                    'clearance items marked "final sale". [1]')


@pytest.mark.django_db
def test_two_questions_in_one_message_may_cite_two_articles(demo_kb):
    (text, citations), _ = answer("How long do refunds take? And do you ship to Canada?")

    assert [c["title"] for c in citations] == ["Refunds", "International shipping"]
    parts = quoted_parts(text)
    assert [n for _, n in parts] == [1, 2]
    assert [c["snippet"] for c in citations] == [q for q, _ in parts]
    assert "Canada" in parts[1][0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "question", ["What's the capital of Australia?", "Who painted the Mona Lisa?", "hello"]
)
def test_off_topic_questions_are_a_plain_dont_know_with_no_citations(demo_kb, question):
    (text, citations), _ = answer(question)
    assert (text, citations) == (DONT_KNOW, [])
    assert "talk to a person" in DONT_KNOW


def test_an_article_with_no_sentence_near_the_question_is_a_decline_not_a_quote():
    # ground() judges articles as a whole; compose() still quotes nothing unrelated.
    about = passage("d1", "About", "Our company was founded in 1999 in a small town.")
    assert compose("How do I reset my password?", [about]) == (DONT_KNOW, [])
    assert compose("anything", []) == (DONT_KNOW, [])


def test_provider_is_chosen_by_llm_provider(settings):
    assert isinstance(provider_get(), BuiltinProvider)
    settings.LLM_PROVIDER = "nope"
    with pytest.raises(ProviderUnavailable, match="Unknown LLM_PROVIDER"):
        provider_get()


def test_a_sentence_wrapped_over_lines_is_quoted_whole():
    text = ("## Gifts\n\nIf you received an item as a gift, you can return it for a\n"
            "gift card for its\nvalue. The buyer is not told.\n\n- Refunds go to the card")
    gifts = passage("d4", "Returns policy", text)
    text, citations = compose("Can I return a gift I received?", [gifts])
    assert text == "If you received an item as a gift, you can return it for a gift card for its value. [1]"
    assert citations[0]["snippet"] == (
        "If you received an item as a gift, you can return it for a gift card for its value."
    )
