"""Errors of the knowledge base. Every message says what was wrong and what to do."""


class KnowledgeError(Exception):
    """Base of the knowledge base's errors."""


class SearchError(KnowledgeError, ValueError):
    """`retrieval.search()` was given something it cannot search; callers catch this one."""


class KnowledgeBaseNotFound(SearchError, LookupError):
    pass


class QueryTooLong(SearchError):
    pass


class EmbeddingMismatch(SearchError):
    """The knowledge base was embedded with another model than the configured one."""


class EmbeddingError(KnowledgeError):
    """The embedding provider failed or is misconfigured."""


class UnsupportedDocument(KnowledgeError):
    """A document that cannot be parsed; its message is stored as the document's failure reason."""
