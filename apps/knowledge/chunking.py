"""Heading-aware chunking with a token budget and overlap.

A chunk never spans two sections, so its heading path says where it comes from. Within a section,
paragraphs are packed up to the budget; a paragraph over the budget is split into sentences, and a
sentence over it into word windows. Consecutive chunks of a section share up to `overlap` tokens
of whole units, so an answer that straddles a boundary is still found whole in one of them.
Tokens are counted with the embedding model's own tokenizer, so the budget is what the model sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from .parsers import ParsedDocument

CHUNK_TOKENS = 200
CHUNK_OVERLAP = 40
HEADING_SEPARATOR = " > "
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


@dataclass(frozen=True)
class ChunkDraft:
    order: int
    heading_path: str
    text: str
    token_count: int

    def embedding_input(self, title: str) -> str:
        # Title and headings give a short chunk the context it lacks on its own.
        head = HEADING_SEPARATOR.join(p for p in (title, self.heading_path) if p)
        return f"{head}\n\n{self.text}" if head else self.text


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    joiner: str  # what goes before it when it follows another unit


@cache
def _tokenizer():
    from tokenizers import Tokenizer

    from .onnx_embedder import PACKAGED_TOKENIZER

    tokenizer = Tokenizer.from_file(str(PACKAGED_TOKENIZER))
    # The model's tokenizer.json pads and truncates to 128: counting needs the real lengths.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def count_tokens(texts: list[str]) -> list[int]:
    if not texts:
        return []
    encodings = _tokenizer().encode_batch(texts, add_special_tokens=False)
    return [len(e.ids) for e in encodings]


def chunking_signature(max_tokens: int = CHUNK_TOKENS, overlap: int = CHUNK_OVERLAP) -> str:
    """Changes when chunking would give other chunks, so re-ingest knows to redo a document."""
    return f"chunk-v1/{max_tokens}/{overlap}"


def chunk_document(
    doc: ParsedDocument, *, max_tokens: int = CHUNK_TOKENS, overlap: int = CHUNK_OVERLAP
) -> list[ChunkDraft]:
    drafts: list[ChunkDraft] = []
    for section in doc.sections:
        heading = HEADING_SEPARATOR.join(section.heading_path)
        prefix_tokens = count_tokens([HEADING_SEPARATOR.join(p for p in (doc.title, heading) if p)])[0]
        # The embedder sees title + headings + text: keep the whole within the budget.
        budget = max(max_tokens - prefix_tokens, max_tokens // 2)
        for text, tokens in _pack(_units(section.text, budget), budget, overlap):
            drafts.append(ChunkDraft(order=len(drafts), heading_path=heading, text=text, token_count=tokens))
    return drafts


def _units(text: str, budget: int) -> list[_Unit]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    units: list[_Unit] = []
    for paragraph, tokens in zip(paragraphs, count_tokens(paragraphs), strict=True):
        if tokens <= budget:
            units.append(_Unit(paragraph, tokens, "\n\n"))
            continue
        sentences = _SENTENCE_END.split(paragraph)
        for i, (sentence, stokens) in enumerate(zip(sentences, count_tokens(sentences), strict=True)):
            joiner = "\n\n" if i == 0 else " "
            if stokens <= budget:
                units.append(_Unit(sentence, stokens, joiner))
            else:
                units.extend(_word_windows(sentence, budget, joiner))
    return units


def _word_windows(sentence: str, budget: int, joiner: str) -> list[_Unit]:
    words = sentence.split()
    word_tokens = count_tokens(words)
    units: list[_Unit] = []
    start = 0
    while start < len(words):
        end, total = start, 0
        while end < len(words) and (total + word_tokens[end] <= budget or end == start):
            total += word_tokens[end]
            end += 1
        units.append(_Unit(" ".join(words[start:end]), total, joiner if start == 0 else " "))
        start = end
    return units


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[tuple[str, int]]:
    chunks: list[tuple[str, int]] = []
    current: list[_Unit] = []
    fresh = 0  # units in `current` that no earlier chunk holds

    def emit() -> None:
        text = current[0].text + "".join(u.joiner + u.text for u in current[1:])
        chunks.append((text, sum(u.tokens for u in current)))

    for unit in units:
        if current and sum(u.tokens for u in current) + unit.tokens > budget:
            emit()
            carried: list[_Unit] = []
            for previous in reversed(current):
                if sum(u.tokens for u in carried) + previous.tokens > overlap:
                    break
                carried.insert(0, previous)
            # Never carry so much that the next unit would not fit beside it.
            while carried and sum(u.tokens for u in carried) + unit.tokens > budget:
                carried.pop(0)
            current, fresh = carried, 0
        current.append(unit)
        fresh += 1
    if current and fresh:
        emit()
    return chunks
