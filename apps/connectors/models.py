"""Connectors (a CRM/ERP system Kefu reaches), their tools (operations the assistant may call)
and tool calls (one row per call: the truth a Celery task moves forward, Saleor's delivery shape).

Configured in Django admin or by `connector_import`, never in code. The assistant sees a tool's
name, description and `parameters` only; the customer's identity enters requests through the
`{customer.external_id}` / `{customer.email}` placeholders, filled from the conversation's
authenticated customer, never from the model's arguments.
"""

from __future__ import annotations

import uuid

from django.db import models


class ConnectorKind(models.TextChoices):
    HTTP = "http", "HTTP / REST"


class AuthType(models.TextChoices):
    NONE = "none", "None"
    BEARER = "bearer", "Bearer token"
    API_KEY_HEADER = "api_key_header", "API key in a header"
    BASIC = "basic", "Basic (username + password)"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", "OAuth2 client credentials"


class Connector(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, help_text="Shown to customers when citing the system.")
    kind = models.CharField(max_length=20, choices=ConnectorKind.choices, default=ConnectorKind.HTTP)
    base_url = models.URLField(max_length=500)
    auth_type = models.CharField(max_length=40, choices=AuthType.choices, default=AuthType.NONE)
    # bearer: the token; api_key_header: the key; basic: the password; oauth2: the client secret.
    secret = models.CharField(max_length=2000, blank=True)
    # basic: the username; oauth2: the client id.
    username = models.CharField(max_length=300, blank=True)
    api_key_header = models.CharField(max_length=100, blank=True, default="X-API-Key")
    oauth2_token_url = models.URLField(max_length=500, blank=True)
    oauth2_scope = models.CharField(max_length=500, blank=True)
    connect_timeout_s = models.FloatField(default=3.0)
    read_timeout_s = models.FloatField(default=10.0)
    max_attempts = models.PositiveSmallIntegerField(default=3, help_text="Tries on timeouts, 5xx and 429.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug


class Tool(models.Model):
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=64, help_text="What the model calls: letters, digits, _ and -.")
    description = models.TextField(blank=True)
    # JSON Schema of the arguments the model fills (self-contained, no $ref).
    parameters = models.JSONField(default=dict, blank=True)
    method = models.CharField(max_length=10, default="GET")
    # e.g. "/customers/{customer.external_id}/orders/{order_number}"
    path_template = models.CharField(max_length=1000)
    # {"query param": "{argument}" or a constant}; same for the JSON body's fields.
    query_map = models.JSONField(default=dict, blank=True)
    body_map = models.JSONField(default=dict, blank=True)
    # Dotted paths of the response to keep ("number", "lines.sku"); empty keeps everything (capped).
    response_fields = models.JSONField(default=list, blank=True)
    requires_confirmation = models.BooleanField(
        default=False,
        help_text="Writes (tickets, refunds, cancellations) run only after the customer approves.",
    )
    confirmation_template = models.CharField(
        max_length=500, blank=True, help_text='e.g. "Request a refund for order {order_number}?"'
    )
    progress_text = models.CharField(max_length=200, blank=True, help_text='e.g. "Looking up your order…"')
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connector", "name"]
        constraints = [models.UniqueConstraint(fields=["connector", "name"], name="tool_connector_name_uniq")]

    def __str__(self) -> str:
        return f"{self.connector.slug}.{self.name}"

    @property
    def needs_identity(self) -> bool:
        templates = [
            self.path_template,
            *map(str, self.query_map.values()),
            *map(str, self.body_map.values()),
        ]
        return any("{customer." in t for t in templates)


class ToolCallStatus(models.TextChoices):
    AWAITING_CONFIRMATION = "awaiting_confirmation", "Awaiting the customer's confirmation"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DECLINED = "declined", "Declined by the customer"


FINAL_STATUSES = frozenset({ToolCallStatus.SUCCEEDED, ToolCallStatus.FAILED, ToolCallStatus.DECLINED})


class ToolCall(models.Model):
    """One call of a tool in a conversation. Agents see arguments and results in the console;
    customers see only the `tool` events' customer-safe `detail`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="tool_calls"
    )
    turn_id = models.UUIDField(null=True, blank=True)
    tool = models.ForeignKey(Tool, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls")
    name = models.CharField(max_length=64)
    connector_slug = models.CharField(max_length=100, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=30, choices=ToolCallStatus.choices, default=ToolCallStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Sent as Idempotency-Key with every try of this call: the system does the write once.
    idempotency_key = models.CharField(max_length=100, unique=True)
    detail = models.CharField(max_length=500, blank=True, help_text="The customer-safe description.")
    result = models.JSONField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="toolcall_conv_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
