"""The garbage collector in a long-running process.

A web process holds millions of objects made at start-up and never freed: Django, the
embedding model and tokenizers, jieba's dictionary, the knowledge bases' vocabularies and label
vectors. Python's full (generation 2) collection walks every one of them; measured here, with
100 customers asking at once, one took 237 ms, and the event loop served nobody meanwhile.
`gc.freeze()` moves what exists into a permanent generation that collections skip; what is
made later is collected as before, and reference counting still frees frozen objects.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def heap_freeze(*, collect: bool = True) -> None:
    """Exempt every object alive now from future collections: once start-up is done, and again
    after more start-up work (the knowledge warm-up thread). `collect` first frees what start-up
    left as garbage; a process already serving skips it, as a full collection would stall it."""
    if collect:
        gc.collect()
    gc.freeze()
    logger.debug("froze %d objects out of the garbage collector's reach", gc.get_freeze_count())
