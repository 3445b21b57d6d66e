"""The demo workspace's teams: Support, with the demo agent in it, and Billing, which a rule
routes invoice and payment questions to. Idempotent; edits made in admin stay."""

from __future__ import annotations

from typing import Any

from .models import Team, TeamRule

BILLING_KEYWORDS = "invoice, billing, VAT, payment, charged twice"


def demo_teams_setup(*, agent: Any | None) -> list[Team]:
    support, _ = Team.objects.get_or_create(slug="support", defaults={"name": "Support"})
    billing, _ = Team.objects.get_or_create(slug="billing", defaults={"name": "Billing"})
    if not billing.rules.exists():
        TeamRule.objects.create(team=billing, keywords=BILLING_KEYWORDS, order=10)
    if agent is not None:
        support.members.add(agent)
    return [support, billing]
