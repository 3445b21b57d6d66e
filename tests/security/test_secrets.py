"""Secrets at rest and in the admin (issue 15): connector credentials and webhook secrets are
encrypted in Postgres, never rendered back into the admin's HTML, kept when the field is left
empty, still sign and authenticate, and rotate to a new key with `secrets_rotate`."""

from __future__ import annotations

import hashlib
import re
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from bs4 import BeautifulSoup
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import connection
from standardwebhooks.webhooks import Webhook

from apps.audit.models import AuditEntry
from apps.connectors.models import Connector, ToolCall
from apps.webhooks.delivery import outgoing_delivery_attempt
from apps.webhooks.models import EventDelivery, WebhookEndpoint, WebhookSource
from apps.webhooks.outgoing import outgoing_cache_clear, outgoing_event_publish
from apps.webhooks.services import webhook_source_ensure
from tests.support.process import DEMO_CRM_TOKEN
from tests.support.toolbox import box_for
from tests.support.webhooks import receiver, shipped, signed

# Every test here: no ORM connection left on asgiref's thread (async tests reach the ORM through it).
pytestmark = pytest.mark.usefixtures("thread_connections_closed")

CONNECTOR_TOKEN = "tok_live_Qm9uZCBqYW1lcyBib25k7f3a"
NEW_CONNECTOR_TOKEN = "tok_live_c2Vjb25kIHRva2VuIGhlcmU91bc"
SOURCE_SECRET = "whsec_c291cmNlLXNlY3JldC1vbmUtb2YtMzItYnl0ZXMhIQ=="
SOURCE_SECRET_2 = "whsec_c291cmNlLXNlY3JldC10d28tb2YtMzItYnl0ZXMhIQ=="
SUBSCRIBER_SECRET = "whsec_c3Vic2NyaWJlci1zZWNyZXQtYWRtaW4tMzJieXRlcyE="
OLD_KEY = "b2xkLWtlZnUtc2VjcmV0cy1rZXktb2YtMzItYnl0ZXM="
NEW_KEY = "bmV3LWtlZnUtc2VjcmV0cy1rZXktb2YtMzItYnl0ZXM="


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    # Connectors and subscribers in these tests live on loopback (the demo CRM, the receiver).
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    outgoing_cache_clear()
    yield
    outgoing_cache_clear()


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[-4:]


def form_fields(html: str) -> dict[str, list[str]]:
    """What a browser would submit from the admin's change form, untouched."""
    form = BeautifulSoup(html, "html.parser").find("form", id=re.compile(r"_form$"))
    data: dict[str, list[str]] = {}
    for tag in form.find_all(["input", "select", "textarea"]):
        name = tag.get("name")
        kind = tag.get("type", "text")
        if not name or kind in ("submit", "button", "file", "image", "reset"):
            continue
        if tag.name == "input":
            if kind in ("checkbox", "radio") and not tag.has_attr("checked"):
                continue
            data.setdefault(name, []).append(tag.get("value", "on" if kind in ("checkbox", "radio") else ""))
        elif tag.name == "select":
            options = tag.find_all("option")
            chosen = [o for o in options if o.has_attr("selected")] or options[:1]
            data.setdefault(name, []).extend(o.get("value", o.text) for o in chosen)
        else:
            data.setdefault(name, []).append(tag.text.removeprefix("\n"))
    return data


def admin_save(client, page: str, /, **changes: str) -> None:
    """Open the admin form at `page`, change some fields as a staff member would, save."""
    data = form_fields(client.get(page).content.decode()) | {k: [v] for k, v in changes.items()}
    response = client.post(page, data)
    assert response.status_code == 302, BeautifulSoup(response.content, "html.parser").select(".errorlist")


def stored(table: str, column: str, pk) -> str:
    """The column as Postgres holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column}::text FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def admin_pages(client, base: str, pk) -> str:
    return "".join(
        client.get(url).content.decode() for url in (base, f"{base}{pk}/change/", f"{base}{pk}/history/")
    )


def change_messages(model, pk) -> list[str]:
    entries = LogEntry.objects.filter(content_type__model=model._meta.model_name, object_id=str(pk))
    return [e.get_change_message() for e in entries.order_by("pk")]


@pytest.mark.django_db
def test_a_connector_token_is_write_only_in_the_admin_and_encrypted_in_postgres(admin_client):
    base = "/admin/connectors/connector/"
    admin_save(
        admin_client,
        f"{base}add/",
        slug="acme-crm",
        name="Acme CRM",
        base_url="http://127.0.0.1:9/",
        auth_type="bearer",
        secret=CONNECTOR_TOKEN,
    )
    connector = Connector.objects.get(slug="acme-crm")
    change = f"{base}{connector.pk}/change/"

    page = admin_client.get(change).content.decode()
    assert CONNECTOR_TOKEN not in page
    assert f"1 secret is set; SHA-256 fingerprint …{fingerprint(CONNECTOR_TOKEN)}." in page
    assert form_fields(page)["secret"] == [""]

    admin_save(admin_client, change, name="Acme CRM (EU)")  # the secret field left empty
    connector.refresh_from_db()
    assert (connector.name, connector.secret) == ("Acme CRM (EU)", CONNECTOR_TOKEN)

    admin_save(admin_client, change, secret=NEW_CONNECTOR_TOKEN)
    connector.refresh_from_db()
    assert connector.secret == NEW_CONNECTOR_TOKEN

    raw = stored("connectors_connector", "secret", connector.pk)
    assert raw.startswith("fernet:")
    assert NEW_CONNECTOR_TOKEN not in raw
    html = admin_pages(admin_client, base, connector.pk)
    assert (CONNECTOR_TOKEN in html, NEW_CONNECTOR_TOKEN in html) == (False, False)
    assert change_messages(Connector, connector.pk) == ["Added.", "Changed Name.", "Changed Secret."]


def post_webhook(client, secret: str, slug: str = "shop-crm") -> int:
    """The intake's answer (its view works on the DB pool's connections: only committed rows)."""
    body, headers = signed(shipped(), secret=secret)
    response = client.post(f"/webhooks/{slug}/", data=body, content_type="application/json", headers=headers)
    return response.status_code


@pytest.mark.django_db(transaction=True)
def test_webhook_source_secrets_are_write_only_encrypted_and_still_verify(admin_client, client):
    base = "/admin/webhooks/webhooksource/"
    admin_save(
        admin_client,
        f"{base}add/",
        slug="shop-crm",
        name="Shop",
        verifier="standard",
        add_secret=SOURCE_SECRET,
    )
    source = WebhookSource.objects.get(slug="shop-crm")
    change = f"{base}{source.pk}/change/"
    assert source.secrets == [SOURCE_SECRET]
    raw = stored("webhooks_webhooksource", "secrets", source.pk)
    assert raw.startswith("fernet:")
    assert SOURCE_SECRET.removeprefix("whsec_") not in raw
    assert post_webhook(client, SOURCE_SECRET) == 202

    admin_save(admin_client, change, add_secret=SOURCE_SECRET_2)  # rotation: the new one first
    page = admin_client.get(change).content.decode()
    assert (
        f"2 secrets are set (newest first); SHA-256 fingerprint …{fingerprint(SOURCE_SECRET_2)}, "
        f"…{fingerprint(SOURCE_SECRET)}."
    ) in page
    assert [post_webhook(client, SOURCE_SECRET), post_webhook(client, SOURCE_SECRET_2)] == [202, 202]

    admin_save(admin_client, change, name="Shop (EU)")  # nothing typed: every secret kept
    source.refresh_from_db()
    assert (source.name, source.secrets) == ("Shop (EU)", [SOURCE_SECRET_2, SOURCE_SECRET])

    admin_save(admin_client, change, keep_only_newest="on")
    assert [post_webhook(client, SOURCE_SECRET), post_webhook(client, SOURCE_SECRET_2)] == [401, 202]
    assert f"1 secret is set; SHA-256 fingerprint …{fingerprint(SOURCE_SECRET_2)}." in (
        admin_client.get(change).content.decode()
    )
    html = admin_pages(admin_client, base, source.pk)
    assert (SOURCE_SECRET in html, SOURCE_SECRET_2 in html) == (False, False)
    raw = stored("webhooks_webhooksource", "secrets", source.pk)
    assert SOURCE_SECRET_2.removeprefix("whsec_") not in raw


@pytest.mark.django_db
def test_a_subscriber_secret_is_write_only_encrypted_and_still_signs_deliveries(admin_client):
    base = "/admin/webhooks/webhookendpoint/"
    with receiver([200]) as hooks:
        admin_save(admin_client, f"{base}add/", name="Data team", url=hooks.url, secret=SUBSCRIBER_SECRET)
        subscriber = WebhookEndpoint.objects.get(name="Data team")
        change = f"{base}{subscriber.pk}/change/"
        admin_save(admin_client, change, name="Data team (EU)")  # the secret field left empty

        outgoing_event_publish(event_type="csat.received", data={"conversation_id": "c1", "score": 5})
        outgoing_delivery_attempt(delivery_id=EventDelivery.objects.get().pk)

    [request] = hooks.requests
    body = Webhook(SUBSCRIBER_SECRET).verify(request.body.decode(), request.headers)
    assert (body["type"], body["data"]) == ("csat.received", {"conversation_id": "c1", "score": 5})
    raw = stored("webhooks_webhookendpoint", "secret", subscriber.pk)
    assert raw.startswith("fernet:")
    assert SUBSCRIBER_SECRET.removeprefix("whsec_") not in raw
    html = admin_pages(admin_client, base, subscriber.pk)
    assert SUBSCRIBER_SECRET not in html
    assert f"1 secret is set; SHA-256 fingerprint …{fingerprint(SUBSCRIBER_SECRET)}." in html
    assert change_messages(WebhookEndpoint, subscriber.pk) == ["Added.", "Changed Name."]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_token_set_in_the_admin_authenticates_tool_calls_against_the_demo_crm(
    demo_connector,  # noqa: F811 (fixtures imported above)
    ada,  # noqa: F811
    conversation_of,  # noqa: F811
    celery_worker_live,
    admin_client,
):
    await Connector.objects.filter(pk=demo_connector.pk).aupdate(secret="a-token-the-crm-refuses")
    box = await box_for(await sync_to_async(conversation_of)(ada))
    refused = await box.call("customer_profile", {})

    change = f"/admin/connectors/connector/{demo_connector.pk}/change/"
    await sync_to_async(admin_save)(admin_client, change, secret=DEMO_CRM_TOKEN)
    await sync_to_async(admin_save)(admin_client, change, read_timeout_s="6.0")  # secret left empty
    outcome = await box.call("customer_profile", {})

    assert (refused.status, (await ToolCall.objects.aget(pk=refused.call_id)).http_status) == ("failed", 401)
    assert (outcome.status, outcome.data) == (
        "succeeded",
        {"name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold", "since": "2021-03-14"},
    )
    raw = await sync_to_async(stored)("connectors_connector", "secret", demo_connector.pk)
    assert raw.startswith("fernet:")
    assert DEMO_CRM_TOKEN not in raw


def rotate() -> list[str]:
    out = StringIO()
    call_command("secrets_rotate", stdout=out)
    return out.getvalue().splitlines()


@pytest.mark.django_db(transaction=True)
def test_secrets_rotate_re_encrypts_with_the_new_first_key_then_the_old_key_can_go(settings, client):
    from apps.core.crypto import SecretUndecryptable

    settings.KEFU_SECRET_KEYS = [OLD_KEY]
    connector = Connector.objects.create(
        slug="acme-crm",
        name="Acme",
        base_url="http://127.0.0.1:9/",
        auth_type="bearer",
        secret=CONNECTOR_TOKEN,
    )
    Connector.objects.create(slug="open-data", name="Open data", base_url="http://127.0.0.1:9/")
    webhook_source_ensure(slug="shop-crm", secrets=[SOURCE_SECRET])
    subscriber = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/", secret=SUBSCRIBER_SECRET)
    before = stored("connectors_connector", "secret", connector.pk)

    settings.KEFU_SECRET_KEYS = [NEW_KEY]
    with pytest.raises(SecretUndecryptable):  # the old key is still needed before the rotation
        Connector.objects.get(pk=connector.pk)

    settings.KEFU_SECRET_KEYS = [NEW_KEY, OLD_KEY]
    assert rotate() == [
        "connectors.Connector.secret: 1 re-encrypted, 0 already current, 1 empty",
        "webhooks.WebhookSource.secrets: 1 re-encrypted, 0 already current, 0 empty",
        "webhooks.WebhookEndpoint.secret: 1 re-encrypted, 0 already current, 0 empty",
        "3 secret(s) re-encrypted with the first key",
    ]
    assert rotate() == [  # idempotent
        "connectors.Connector.secret: 0 re-encrypted, 1 already current, 1 empty",
        "webhooks.WebhookSource.secrets: 0 re-encrypted, 1 already current, 0 empty",
        "webhooks.WebhookEndpoint.secret: 0 re-encrypted, 1 already current, 0 empty",
        "0 secret(s) re-encrypted with the first key",
    ]
    rotations = AuditEntry.objects.filter(action="secrets.rotate").order_by("at")
    assert [r.detail["total"] for r in rotations] == [3, 0]  # each run is one audit row

    settings.KEFU_SECRET_KEYS = [NEW_KEY]  # the old key dropped
    after = stored("connectors_connector", "secret", connector.pk)
    assert after.startswith("fernet:") and after != before
    assert Connector.objects.get(pk=connector.pk).secret == CONNECTOR_TOKEN
    assert WebhookEndpoint.objects.get(pk=subscriber.pk).secret == SUBSCRIBER_SECRET
    assert post_webhook(client, SOURCE_SECRET) == 202
