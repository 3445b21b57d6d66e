"""The console's part of the demo workspace: a few canned replies, and the demo agent's
right to manage them in /admin/ (it is staff, not a superuser)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

from .models import CannedReply

DEMO_CANNED_REPLIES = [
    ("hello", "Greeting", "Hi, I'm here to help. Give me a moment to read through your conversation."),
    ("thanks", "Thanks for waiting", "Thanks for waiting! I'm looking into it now."),
    ("order", "Ask for the order number", "Could you tell me your order number? It starts with PP-."),
    ("bye", "Closing", "Anything else I can help with? If not, I'll close this chat. Have a nice day!"),
]


@transaction.atomic
def demo_console_setup() -> int:
    """Create the demo canned replies (once; edits made in admin stay) and let the demo agent
    manage canned replies. Returns how many canned replies exist."""
    for shortcut, title, text in DEMO_CANNED_REPLIES:
        CannedReply.objects.get_or_create(shortcut=shortcut, defaults={"title": title, "text": text})
    agent = get_user_model().objects.filter(username=settings.DEMO_AGENT_EMAIL).first()
    if agent is not None:
        agent.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="console", content_type__model="cannedreply")
        )
    return CannedReply.objects.count()
