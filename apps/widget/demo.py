"""What the demo shop's own server knows: who is signed in, and how it proves that to Kefu.

A real customer site computes `user_hash` on its server exactly like this; the secret never
reaches the browser.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class DemoShopper:
    user_id: str
    name: str
    email: str


# Shoppers the demo page can sign in as (`/?as=demo-customer-1`); they match the demo CRM data.
DEMO_SHOPPERS = {
    "demo-customer-1": DemoShopper(user_id="demo-customer-1", name="Ada Lovelace", email="ada@example.com"),
    "demo-customer-2": DemoShopper(user_id="demo-customer-2", name="Grace Hopper", email="grace@example.com"),
}


def user_hash_compute(*, user_id: str) -> str:
    """HMAC-SHA256 of the user id with the widget identity secret, hex (PROTOCOL.md §1)."""
    secret = settings.WIDGET_IDENTITY_SECRET.encode()
    return hmac.new(secret, user_id.encode(), hashlib.sha256).hexdigest()
