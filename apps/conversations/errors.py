"""Errors the conversation services raise; `code` is the PROTOCOL.md §2 `error.code`."""


class ConversationError(Exception):
    code = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConversationNotFound(ConversationError):
    code = "not_found"


class ConversationForbidden(ConversationError):
    code = "forbidden"


class ConversationConflict(ConversationError):
    code = "conflict"
