"""Report rollups: one fact row per conversation, and hourly sums of those facts.

`ConversationFact` is a pure function of a conversation's rows (messages, handoff events,
feedback, SLA clocks) and the time (the 24 h idle rule): apps/reports/facts.py computes it.
`HourlyRollup` holds, per UTC hour the conversations started in × team × agent, the sums of
the facts that the page and `GET /api/reports/summary` add up; it is kept by applying each
fact's change (old row out, new row in), so it always equals a GROUP BY over the facts.
Team and agent "none" are 0 there (a plain unique key, no NULLs to match in ON CONFLICT).
Its table keeps 30 % of each page free (fillfactor, migration 0002): a row's updates stay on
its page (HOT), so the rows of a period stay together, as the rebuild wrote them, in hour order.
"""

from __future__ import annotations

from django.db import models


class ConversationFact(models.Model):
    # No FK constraint, no cascade: a fact outlives a deleted conversation until `facts_forget`,
    # a refresh of its id or the nightly rebuild takes it out of the rollups too (a cascade
    # would drop the fact and leave its sums behind).
    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True,
        related_name="+",
    )
    started_at = models.DateTimeField()
    team_id = models.BigIntegerField(default=0)  # 0: no team
    agent_id = models.BigIntegerField(default=0)  # the assignee; 0: none
    ai_involved = models.BooleanField(default=False)  # the assistant answered at least once
    handover_at = models.DateTimeField(null=True)  # a person was asked for or took over
    first_human_at = models.DateTimeField(null=True)  # the first agent reply after it
    last_message_at = models.DateTimeField(null=True)
    closed_at = models.DateTimeField(null=True)
    ai_resolved = models.BooleanField(default=False)
    frt_s = models.IntegerField(null=True)  # first_human_at - handover_at
    resolution_s = models.IntegerField(null=True)  # closed_at - started_at
    csat_score = models.SmallIntegerField(null=True)
    helpful = models.IntegerField(default=0)
    unhelpful = models.IntegerField(default=0)
    sla_met = models.BooleanField(null=True)  # null: no clocks
    refreshed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["started_at"], name="fact_started"),
            # The idle rule's sweep: involved, no handover, open, not yet resolved.
            models.Index(
                fields=["last_message_at"], name="fact_idle_candidates",
                condition=models.Q(ai_involved=True, handover_at__isnull=True, closed_at__isnull=True,
                                   ai_resolved=False),
            ),
            # Percentiles read these alone (index-only scans over a period).
            models.Index(fields=["started_at"], include=["frt_s", "team_id", "agent_id"], name="fact_frt",
                         condition=models.Q(frt_s__isnull=False)),
            models.Index(fields=["started_at"], include=["resolution_s", "team_id", "agent_id"],
                         name="fact_resolution", condition=models.Q(resolution_s__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"facts of {self.conversation_id}"


class HourlyRollup(models.Model):
    hour = models.DateTimeField()  # started_at truncated to the UTC hour
    team_id = models.BigIntegerField()
    agent_id = models.BigIntegerField()
    conversations = models.IntegerField(default=0)
    ai_involved = models.IntegerField(default=0)
    ai_resolved = models.IntegerField(default=0)
    handovers = models.IntegerField(default=0)
    answered = models.IntegerField(default=0)  # had a first human response (frt_s)
    frt_sum = models.BigIntegerField(default=0)
    closed = models.IntegerField(default=0)
    resolution_sum = models.BigIntegerField(default=0)
    csat_count = models.IntegerField(default=0)
    csat_sum = models.IntegerField(default=0)
    csat_1 = models.IntegerField(default=0)
    csat_2 = models.IntegerField(default=0)
    csat_3 = models.IntegerField(default=0)
    csat_4 = models.IntegerField(default=0)
    csat_5 = models.IntegerField(default=0)
    sla_met = models.IntegerField(default=0)
    sla_breached = models.IntegerField(default=0)
    helpful = models.IntegerField(default=0)
    unhelpful = models.IntegerField(default=0)
    # First response times: < 1 min, < 5 min, < 15 min, < 1 h, < 4 h, longer (facts.FRT_BINS).
    frt_b0 = models.IntegerField(default=0)
    frt_b1 = models.IntegerField(default=0)
    frt_b2 = models.IntegerField(default=0)
    frt_b3 = models.IntegerField(default=0)
    frt_b4 = models.IntegerField(default=0)
    frt_b5 = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "team_id", "agent_id"], name="rollup_hour_team_agent")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h team {self.team_id} agent {self.agent_id}: {self.conversations}"
