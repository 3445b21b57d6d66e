"""Retrieved passages made by hand, for provider tests."""

from apps.knowledge.retrieval import Passage


def passage(doc, title, text, similarity=0.7, coverage=0.6):
    return Passage(document_id=doc, external_id=doc, title=title, url="", snippet=text[:40], text=text,
                   heading_path="", score=1.0, similarity=similarity, chunk_id=1, coverage=coverage)
