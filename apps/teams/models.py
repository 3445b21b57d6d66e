"""Teams of agents: a conversation belongs to at most one team, an agent to any number.

Agents see and are auto-assigned their teams' conversations; supervisors and admins see all
(PROTOCOL.md §3). A team's time zone is where its business hours and holidays are counted.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # What the widget's `team` setting names (PROTOCOL.md §1) and reports filter by.
    slug = models.SlugField(max_length=50, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamRule(models.Model):
    """Routes a new conversation that names no team (the widget's `team` setting) by its first
    customer message: the enabled rules are tried by `order`, and the first that matches wins.

    A rule matches when the message contains one of its keywords (whole words, any case) or
    matches its regular expression; a rule with neither matches every message (a catch-all,
    put it last)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rules")
    keywords = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated words or phrases, e.g. invoice, refund, VAT."
    )
    pattern = models.CharField(
        max_length=500, blank=True, help_text="Optional regular expression, matched case-insensitively."
    )
    order = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return f"{self.team} #{self.order}"

    def clean(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValidationError({"pattern": f"Not a valid regular expression: {exc}."}) from exc
