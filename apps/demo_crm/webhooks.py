"""Signed Standard Webhooks from the demo CRM/ERP to Kefu's `/webhooks/demo-crm/`."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

logger = logging.getLogger("demo_crm")
ATTEMPTS = 5


def send(url: str, secret: str, event: dict[str, Any]) -> int | None:
    """POST the event signed with `secret` (a `whsec_` secret); a few retries with backoff.
    Returns the final HTTP status (None when Kefu could not be reached)."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps(event)
    status = None
    for attempt in range(ATTEMPTS):
        now = datetime.now(tz=UTC)
        signature = Webhook(secret).sign(msg_id, now, body)
        request = urllib.request.Request(
            url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            logger.warning("webhook %s to %s failed: %s", msg_id, url, exc)
            status = None
        if status is not None and status < 500 and status != 429:
            logger.info("webhook %s %s -> %s", event["type"], msg_id, status)
            return status
        time.sleep(min(2**attempt, 30))
    return status
