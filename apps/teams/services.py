"""Routing a new conversation to a team: the widget's `team` setting first, then the first
team rule that matches the customer's first message (models.TeamRule). Nothing here fails a
chat: an unknown slug or a broken rule just routes nowhere (the conversation has no team)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.db import connection

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


def team_rule_first_match(*, rules: Iterable[TeamRule], text: str) -> int | None:
    """The team id of the first rule (in order) that routes this message."""
    for rule in rules:
        if team_rule_matches(rule=rule, text=text):
            return rule.team_id
    return None


# What routing needs, as one SQL expression (a JSON object) with a `%(team_slug)s` parameter: a
# caller reads it in the round trip it makes anyway (the chat's receive lookup), since routing
# runs on every new conversation and each statement costs about a millisecond there.
ROUTING_SQL = """(SELECT json_build_object(
  'slug_team', (SELECT id FROM teams_team WHERE slug = %(team_slug)s),
  'rules', (SELECT json_agg(json_build_array(r.id, r.team_id, r.keywords, r.pattern)
                            ORDER BY r."order", r.id)
              FROM teams_teamrule r WHERE r.enabled)))"""


def routing_slug(slug: object) -> str | None:
    """The widget's `team` setting if it can name a team (the ROUTING_SQL parameter)."""
    return slug if isinstance(slug, str) and slug and len(slug) <= SLUG_MAX else None


def routing_read(*, slug: str | None) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ROUTING_SQL}", {"team_slug": routing_slug(slug)})
        return cursor.fetchone()[0]


def team_id_route(*, routing: dict[str, Any], text: str) -> int | None:
    """The team id of a new conversation from ROUTING_SQL's row: the team the widget names,
    else the first matching enabled rule, else none. The chat socket's statement looks up the
    widget's team itself and asks for this only while a rule is enabled (realtime migration 0003)."""
    if routing.get("slug_team") is not None:
        return routing["slug_team"]
    rules = [TeamRule(id=rule_id, team_id=team_id, keywords=keywords, pattern=pattern)
             for rule_id, team_id, keywords, pattern in routing.get("rules") or ()]
    return team_rule_first_match(rules=rules, text=text)


def team_route(*, slug: str | None, text: str) -> Team | None:
    """The team of a new conversation (see team_id_route)."""
    team_id = team_id_route(routing=routing_read(slug=slug), text=text)
    return None if team_id is None else Team.objects.get(pk=team_id)
