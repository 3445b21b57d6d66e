from apps.knowledge.chunking import chunk_document, count_tokens
from apps.knowledge.parsers import ParsedDocument, Section


def paragraph(word: str, n: int = 30) -> str:
    return " ".join([word] * n)


def test_paragraphs_are_packed_to_the_budget_with_whole_paragraph_overlap():
    words = ["apple", "river", "stone", "cloud", "green", "table"]
    assert count_tokens([paragraph(w) for w in words]) == [30] * 6
    doc = ParsedDocument(title="", sections=[Section((), "\n\n".join(paragraph(w) for w in words))])

    chunks = chunk_document(doc, max_tokens=100, overlap=40)

    assert [(c.order, c.token_count) for c in chunks] == [(0, 90), (1, 90), (2, 60)]
    assert [c.text.split("\n\n") for c in chunks] == [
        [paragraph("apple"), paragraph("river"), paragraph("stone")],
        [paragraph("stone"), paragraph("cloud"), paragraph("green")],  # "stone" is the overlap
        [paragraph("green"), paragraph("table")],
    ]


def test_a_chunk_never_spans_two_sections_and_carries_its_heading_path():
    doc = ParsedDocument(
        title="Refunds",
        sections=[
            Section(("When",), "Within five working days."),
            Section(("When", "PayPal"), "Within a day."),
            Section(("How",), "To the original payment method."),
        ],
    )

    chunks = chunk_document(doc, max_tokens=100, overlap=20)

    assert [(c.heading_path, c.text) for c in chunks] == [
        ("When", "Within five working days."),
        ("When > PayPal", "Within a day."),
        ("How", "To the original payment method."),
    ]
    assert chunks[1].embedding_input("Refunds") == "Refunds > When > PayPal\n\nWithin a day."


def test_long_paragraphs_split_at_sentences_then_words():
    sentences = [paragraph(w, 20) + "." for w in ("apple", "river", "stone")]
    long_sentence = paragraph("cloud", 70)
    doc = ParsedDocument(title="", sections=[Section((), " ".join(sentences) + "\n\n" + long_sentence)])

    chunks = chunk_document(doc, max_tokens=50, overlap=0)

    assert [c.token_count for c in chunks] == [42, 21, 50, 20]
    assert chunks[0].text == sentences[0] + " " + sentences[1]
    assert chunks[1].text == sentences[2]
    assert chunks[2].text == paragraph("cloud", 50)
    assert chunks[3].text == paragraph("cloud", 20)
    assert all(c.token_count <= 50 for c in chunks)
