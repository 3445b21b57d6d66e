class EmbeddedServiceError(RuntimeError):
    """An embedded service cannot start; the message says why and what to do."""
