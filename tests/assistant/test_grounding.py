"""answer / clarify / hand over (apps/assistant/grounding.py) on a small help center the test
ingests, as the builtin provider turns each into what the customer gets: a cited answer, a
question back with the articles to pick from, or "I don't know" with the offer of a person."""

import asyncio

import pytest

from apps.assistant.grounding import ground
from apps.assistant.phrases import CLARIFY, DONT_KNOW
from apps.assistant.providers import Turn, provider_get
from apps.knowledge.ingestion import documents_index_inline
from apps.knowledge.models import Document
from apps.knowledge.services import document_upsert, knowledge_base_get_or_create

# ground() and the provider's worker thread take their own connection: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

KB = "grounding-help"
ARTICLES = {
    "returns": "# Returning an item\n\nYou can return an unused item within 30 days of delivery. Start a "
               "return from your account page and print the prepaid return label. Drop the parcel at any "
               "post office.",
    "refunds": "# Refunds\n\nOnce your return reaches our warehouse we refund the original payment method. "
               "Refunds take 5 to 10 working days to appear on your card statement.",
    "shipping": "# Delivery costs\n\nStandard delivery costs 4.95 euros and takes two to four working days. "
                "Orders over 60 euros ship for free. Express delivery arrives the next working day.",
    "gift-cards": "# Gift cards\n\nGift cards are valid for two years from purchase. You can check the "
                  "balance of a gift card on the gift card page.",
}
# Customers' words, not the articles': "money back" for refund, "send it back" for return.
ANSWERABLE = "when do I get my money back"
BOTH = "can I send it back and when is my money back"  # two articles fit about equally
OFF_TOPIC = "what is the capital of Mongolia"


@pytest.fixture
def help_center(settings):
    settings.KB_DEFAULT_SLUG = KB
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    kb = knowledge_base_get_or_create(slug=KB, name="Grounding test help center")
    docs = [document_upsert(kb=kb, external_id=slug, filename=f"{slug}.md", data=text.encode(),
                            source_url=f"https://help.example/{slug}")[0] for slug, text in ARTICLES.items()]
    documents_index_inline(docs)
    return {d.external_id: str(d.pk) for d in Document.objects.filter(knowledge_base=kb)}


def reply(question):
    """What the builtin provider streams for a question: (text, citations, outcome, suggestions)."""
    async def collect():
        text, citations, outcome, suggestions = "", None, None, None
        async for chunk in provider_get().answer(Turn(conversation_id="c", question=question)):
            text += chunk.text
            citations = chunk.citations if chunk.citations is not None else citations
            outcome = chunk.outcome or outcome
            suggestions = chunk.suggestions if chunk.suggestions is not None else suggestions
        return text, citations, outcome, suggestions

    return asyncio.run(collect())


def test_a_paraphrased_question_one_article_answers_is_answered_from_it(help_center):
    grounding = ground(ANSWERABLE)
    assert (grounding.decision, grounding.suggestions) == ("answer", [])
    assert [p.external_id for p in grounding.passages[:2]] == ["refunds", "returns"]
    assert grounding.relevance.relevant is True

    text, citations, outcome, suggestions = reply(ANSWERABLE)
    assert (outcome, suggestions) == ("answered", None)
    cited = [(c["n"], c["title"], c["document_id"]) for c in citations]
    assert cited == [(1, "Refunds", help_center["refunds"])]
    assert text == citations[0]["snippet"] + " [1]"
    assert "5 to 10 working days" in text


def test_a_question_two_articles_fit_is_asked_back_with_both_as_suggestions(help_center, monkeypatch):
    # e5's second opinion (retrieval.py) puts Refunds ahead (0.352 to 0.315; it says the refund
    # follows the return): answered. With MiniLM alone the two are within the margin: asked back.
    assert (ground(BOTH).decision, ground(BOTH).passages[0].title) == ("answer", "Refunds")
    monkeypatch.setattr("apps.knowledge.retrieval.SECOND_OPINION_MODEL", "")
    grounding = ground(BOTH)
    expected = [{"title": "Refunds", "document_id": help_center["refunds"]},
                {"title": "Returning an item", "document_id": help_center["returns"]}]
    assert (grounding.decision, grounding.suggestions) == ("clarify", expected)

    assert reply(BOTH) == (CLARIFY, [], "clarify", expected)


def test_tapping_a_suggestion_sends_its_title_and_that_is_answered(help_center):
    # PROTOCOL.md §2: a tap sends the suggestion's title as a normal message.
    grounding = ground("returning an item")
    picked = (grounding.decision, grounding.picked, grounding.passages[0].title)
    assert picked == ("answer", True, "Returning an item")
    assert ground(ANSWERABLE).picked is False
    text, citations, outcome, _ = reply("Returning an item")
    assert outcome == "answered"
    assert [c["title"] for c in citations] == ["Returning an item"]


def test_an_off_topic_question_is_handed_over(help_center):
    grounding = ground(OFF_TOPIC)
    assert (grounding.decision, grounding.suggestions) == ("handover", [])
    assert grounding.relevance.relevant is False

    assert reply(OFF_TOPIC) == (DONT_KNOW, [], "declined", None)


def test_without_a_knowledge_base_every_question_is_handed_over(settings):
    settings.KB_DEFAULT_SLUG = "no-such-kb"
    settings.ASSISTANT_TOKEN_DELAY_S = 0
    assert ground(ANSWERABLE).decision == "handover"
    assert reply(ANSWERABLE) == (DONT_KNOW, [], "declined", None)


def test_customers_asking_the_same_question_at_once_share_one_search(help_center, monkeypatch):
    """A burst about one subject: the answers in flight together search once; each customer
    still gets the whole cited answer, and a different question, or the same one asked after
    the burst, is searched on its own."""
    from apps.assistant import grounding

    searched = []

    def counted(question, **kwargs):
        searched.append(question)
        return ground(question, **kwargs)

    monkeypatch.setattr(grounding, "ground", counted)

    async def burst():
        async def one(question):
            text, citations = "", None
            async for chunk in provider_get().answer(Turn(conversation_id="c", question=question)):
                text += chunk.text
                citations = chunk.citations if chunk.citations is not None else citations
            return text, citations

        together = await asyncio.gather(*(one(ANSWERABLE) for _ in range(5)), one(OFF_TOPIC))
        return together, await one(ANSWERABLE)

    (*same, off_topic), later = asyncio.run(burst())
    assert sorted(searched) == sorted([ANSWERABLE, OFF_TOPIC, ANSWERABLE])
    assert len({text for text, _ in same}) == 1 and same[0] == later
    assert [c["document_id"] for c in same[0][1]] == [help_center["refunds"]]
    assert off_topic[0].startswith(DONT_KNOW)
