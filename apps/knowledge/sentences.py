"""Splitting passage text into sentences, for answers and snippets."""

from __future__ import annotations

import re

# A sentence ends at . ! ? before whitespace, after Chinese 。！？ (no space follows them), at a
# blank line, or before a Markdown list item or heading. A single newline is not an end: Markdown
# wraps long sentences over several lines.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\n\s*\n|\n(?=\s*(?:[-*+]\s|\d+[.)]\s|#))")


def sentence_split(text: str) -> list[str]:
    """The sentences of `text`, each on one line, empty ones dropped."""
    return [" ".join(part.split()) for part in _BOUNDARY.split(text) if part.strip()]
