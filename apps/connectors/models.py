"""Connectors (a CRM/ERP system Kefu reaches), their tools (operations the assistant may call)
and tool calls (one row per call: the truth a Celery task moves forward, Saleor's delivery shape).

Configured in Django admin or by `connector_import`, never in code. The assistant sees a tool's
name, description and `parameters` only; the customer's identity enters requests through the
`{customer.external_id}` / `{customer.email}` placeholders, filled from the conversation's
authenticated customer, never from the model's arguments.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.core.fields import EncryptedTextField


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
    # Encrypted at rest (apps/core/crypto.py); the admin never shows it back.
    secret = EncryptedTextField(blank=True)
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

    def clean(self) -> None:
        # The outbound policy, early: the admin shows a refused address on the field.
        from apps.core.outbound import outbound_clean

        outbound_clean(base_url=self.base_url, oauth2_token_url=self.oauth2_token_url)


# Methods that read only: everything else is a write and asks the customer first.
READ_METHODS = frozenset({"GET", "HEAD"})


def request_templates(path_template: str, query_map: dict | None, body_map: dict | None) -> list[str]:
    """A tool's request templates: path, query and body values (where placeholders live)."""
    return [path_template, *map(str, (query_map or {}).values()), *map(str, (body_map or {}).values())]


def templates_need_identity(templates: list[str]) -> bool:
    return any("{customer." in t for t in templates)


def templates_need_email(templates: list[str]) -> bool:
    return any("{customer.email}" in t for t in templates)


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
        help_text="Ask the customer before a GET/HEAD call too. Every other method (a write) always "
        "asks, whatever this says, unless the tool is marked safe below.",
    )
    # A write that runs without asking: an admin's decision, kept with its reason on the row.
    confirmation_waived_reason = models.TextField(
        blank=True,
        help_text="Only for POST/PUT/PATCH/DELETE tools that change nothing the customer would want to "
        "approve (a search sent as POST, say): why it may run without asking. Empty: it asks.",
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

    def templates(self) -> list[str]:
        """The request templates: path, query and body values (where placeholders live)."""
        return request_templates(self.path_template, self.query_map, self.body_map)

    @property
    def needs_identity(self) -> bool:
        """It reads or changes a customer's data: it runs only for an identified customer."""
        return templates_need_identity(self.templates())

    @property
    def needs_email(self) -> bool:
        """It sends the customer's e-mail: it runs only when that e-mail was verified."""
        return templates_need_email(self.templates())

    @property
    def is_read(self) -> bool:
        return self.method.upper() in READ_METHODS

    @property
    def asks_first(self) -> bool:
        """Writes always ask unless an admin waived it with a reason; reads ask when flagged."""
        if self.requires_confirmation:
            return True
        return not self.is_read and not self.confirmation_waived_reason.strip()


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
    # The customer-safe description; for a write, the question with every argument it sends.
    detail = models.TextField(blank=True, help_text="The customer-safe description.")
    result = models.JSONField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    # Set for a staff member's call (the console's CRM panel): internal, audited here, never a
    # customer `tool` event, never in the conversation's seq or the assistant's prompt.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="toolcall_conv_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
