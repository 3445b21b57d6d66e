"""The console's part of the demo workspace: a few canned replies, the staff roles, and the
demo agent in the `admin` role so the demo can use /admin/ (it is staff, not a superuser)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from apps.teams.demo import demo_teams_setup

from .models import CannedReply
from .roles import role_join, roles_sync

DEMO_CANNED_REPLIES = [
    ("hello", "Greeting", "Hi, I'm here to help. Give me a moment to read through your conversation."),
    ("thanks", "Thanks for waiting", "Thanks for waiting! I'm looking into it now."),
    ("order", "Ask for the order number", "Could you tell me your order number? It starts with PP-."),
    ("bye", "Closing", "Anything else I can help with? If not, I'll close this chat. Have a nice day!"),
]


@transaction.atomic
def demo_console_setup() -> int:
    """Create the demo canned replies (once; edits made in admin stay), bring the role groups
    up to date and make the demo agent an `admin`. Returns how many canned replies exist."""
    for shortcut, title, text in DEMO_CANNED_REPLIES:
        CannedReply.objects.get_or_create(shortcut=shortcut, defaults={"title": title, "text": text})
    roles_sync()  # permissions of models added since the roles migration
    agent = get_user_model().objects.filter(username=settings.DEMO_AGENT_EMAIL).first()
    if agent is not None:
        role_join(user=agent, role="admin")
    demo_teams_setup(agent=agent)  # Support (the demo agent's) and Billing, with its rule
    return CannedReply.objects.count()
