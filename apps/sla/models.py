"""Service-level targets and the clocks that measure a conversation against them.

A policy sets how long a team may take to answer a conversation (first response) and to
close it (resolution), counted in business time: the team's opening hours, less its holidays.
A row with team null is the default; a row with blank priority applies to any priority.
A conversation met its SLA when it has clocks and none has `breached_at`.
"""

from __future__ import annotations

from datetime import time

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from apps.conversations.models import Priority


class ClockKind(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    RESOLUTION = "resolution", "Resolution"


class SlaPolicy(models.Model):
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="sla_policies",
        help_text="Empty: the default policy for conversations of any team.",
    )
    priority = models.CharField(
        max_length=10, choices=Priority.choices, blank=True, help_text="Empty: any priority."
    )
    first_response_s = models.PositiveIntegerField(null=True, blank=True, help_text="Business seconds.")
    resolution_s = models.PositiveIntegerField(null=True, blank=True, help_text="Business seconds.")

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(
                fields=["team", "priority"], nulls_distinct=False, name="sla_policy_one_per_team_priority"
            )
        ]

    def __str__(self) -> str:
        return f"{self.team or 'Default'} / {self.priority or 'any priority'}"


class BusinessHours(models.Model):
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="business_hours",
        help_text="Empty: the default hours. No rows at all: open around the clock.",
    )
    weekday = models.PositiveSmallIntegerField(
        choices=[(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"),
                 (4, "Friday"), (5, "Saturday"), (6, "Sunday")]
    )
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        verbose_name_plural = "business hours"
        ordering = ["team_id", "weekday", "opens"]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"

    def clean(self) -> None:
        # 00:00 as closing time means midnight at the end of the day (open until the day ends).
        if self.closes != time(0) and self.closes <= self.opens:
            raise ValidationError({"closes": "Closing time must be after opening time (00:00: end of day)."})


class Holiday(models.Model):
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="holidays",
        help_text="Empty: a holiday for every team.",
    )
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SlaClock(models.Model):
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="sla_clocks"
    )
    kind = models.CharField(max_length=20, choices=ClockKind.choices)
    due_at = models.DateTimeField()
    # When the clock started (the handover); a default so a clock can be made from due_at alone.
    started_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "kind"], name="sla_clock_one_per_kind")
        ]
        indexes = [
            # The breach sweep: running clocks, nearest due first.
            models.Index(fields=["due_at"], name="sla_clock_running_due",
                         condition=models.Q(stopped_at__isnull=True, breached_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} due {self.due_at:%Y-%m-%d %H:%M}"
