"""Routing a new conversation to a team: the widget's `team` setting first, then the first
team rule that matches the customer's first message (models.TeamRule). Nothing here fails a
chat: an unknown slug or a broken rule just routes nowhere (the conversation has no team)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from .models import Team, TeamRule

logger = logging.getLogger(__name__)

SLUG_MAX = 50  # Team.slug's max_length


def team_rule_matches(*, rule: TeamRule, text: str) -> bool:
    """Whether the rule routes this message: a keyword as a whole word (any case), or the
    pattern; a rule with neither matches everything."""
    keywords = [k.strip() for k in rule.keywords.split(",") if k.strip()]
    if not keywords and not rule.pattern:
        return True
    for keyword in keywords:
        if re.search(rf"(?<!\w){re.escape(keyword)}(?!\w)", text, re.IGNORECASE):
            return True
    if rule.pattern:
        try:
            return re.search(rule.pattern, text, re.IGNORECASE) is not None
        except re.error:  # saved around the admin's check (a script, a shell): skip it
            logger.warning("team rule %s has an invalid pattern %r", rule.pk, rule.pattern)
    return False


def team_rule_first_match(*, rules: Iterable[TeamRule], text: str) -> Team | None:
    for rule in rules:
        if team_rule_matches(rule=rule, text=text):
            return rule.team
    return None


def team_route(*, slug: str | None, text: str) -> Team | None:
    """The team of a new conversation: the one the widget names (`slug`), else the first
    matching enabled rule, else none."""
    if slug and isinstance(slug, str) and len(slug) <= SLUG_MAX:
        team = Team.objects.filter(slug=slug).first()
        if team is not None:
            return team
    rules = TeamRule.objects.filter(enabled=True).select_related("team").order_by("order", "pk")
    return team_rule_first_match(rules=rules, text=text)
