"""Teams of agents: a conversation belongs to at most one team, an agent to any number.

Agents see and are auto-assigned their teams' conversations; supervisors and admins see all
(PROTOCOL.md §3). A team's time zone is where its business hours and holidays are counted.
"""

from __future__ import annotations

from django.conf import settings
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
