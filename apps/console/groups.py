"""Channel-layer groups the console's sockets join.

Agent-only events (queue entries, notes, presence) travel in these groups, never in a
conversation's `conv.<id>` group, so no customer socket can receive them. Which event goes to
which group is decided by apps/conversations/audiences.py; events leave through the publisher
(apps/conversations/publisher.py), never by a `group_send` here. Every message has type
`console.event` (consumer handler `console_event`) and carries the wire event as is.
"""

from __future__ import annotations

from apps.conversations.audiences import AGENTS_GROUP, CONSOLE_EVENT, agents_conversation_group

AGENTS = AGENTS_GROUP
LAYER_TYPE = CONSOLE_EVENT

__all__ = ["AGENTS", "LAYER_TYPE", "agents_conversation_group"]
