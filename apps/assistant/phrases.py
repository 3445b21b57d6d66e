"""The fixed sentences the assistant itself says to a customer (kept in one place so a second
language has one place to translate)."""

from __future__ import annotations

DONT_KNOW = "I don't know that one, sorry. Would you like to talk to a person?"
# A `clarify` answer: the topics follow as suggestion buttons (PROTOCOL.md §2 `suggestions`).
CLARIFY = "I want to make sure I answer the right question. Which of these is it about?"
