"""SLA's part of the demo workspace: a default policy, counted around the clock (no business
hours), so a conversation handed over at any hour of a demo shows a running clock."""

from __future__ import annotations

from .models import SlaPolicy

DEMO_FIRST_RESPONSE_S = 5 * 60
DEMO_RESOLUTION_S = 60 * 60


def demo_sla_setup() -> SlaPolicy:
    """The default policy (once: targets an operator changed in admin stay)."""
    policy = SlaPolicy.objects.filter(team__isnull=True, priority="").first()
    if policy is None:
        policy = SlaPolicy.objects.create(
            first_response_s=DEMO_FIRST_RESPONSE_S, resolution_s=DEMO_RESOLUTION_S
        )
    return policy
