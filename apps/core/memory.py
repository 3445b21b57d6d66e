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


def heap_freeze() -> None:
    """Exempt every object alive now from future collections (call it once start-up work is done;
    again after more start-up work, such as the knowledge warm-up thread)."""
    gc.collect()  # what start-up left as garbage goes now, not into the permanent generation
    gc.freeze()
    logger.debug("froze %d objects out of the garbage collector's reach", gc.get_freeze_count())
