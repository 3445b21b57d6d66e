"""Issue 15, outbound requests: a connector's base URL, its OAuth token URL, an imported
document's server and an outgoing webhook endpoint cannot point Kefu at loopback, private,
link-local or metadata addresses (refused in the admin, by connector_import and at call time),
redirects are not followed, and answers are read only up to a cap; the allow-listed demo CRM
still works.

No packet leaves this machine: the `network` fixture answers DNS for the *.test names below and
fails any connection attempt to a non-loopback address before it is made."""

from __future__ import annotations

import _socket
import asyncio
import errno
import io
import ipaddress
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.db import connections

from apps.connectors.demo import demo_connectors_setup
from apps.connectors.models import Connector, Tool, ToolCall
from apps.connectors.toolbox import toolbox_for
from apps.conversations.models import Conversation
from apps.webhooks.delivery import outgoing_delivery_attempt
from apps.webhooks.models import EventDelivery, EventDeliveryAttempt, EventPayload, WebhookEndpoint
from tests.support.factories import CustomerFactory

PUBLIC = "93.184.216.34"  # a globally routable address; the guard stops any attempt to reach it
SECRET = "whsec_c3Vic2NyaWJlci1zZWNyZXQtb2YtMzItYnl0ZXMhIQ=="
CAP = 1024 * 1024
BIG = 64 * CAP

# URL -> the refusal, for every way in (admin, call time).
REFUSED = {
    "http://127.0.0.1:9/api": "refused: 127.0.0.1 is a loopback address",
    "http://10.0.0.1/api": "refused: 10.0.0.1 is a private address",
    "http://169.254.169.254/latest/meta-data": "refused: 169.254.169.254 is a cloud metadata address",
    "http://private.test/api": "refused: private.test resolves to 10.0.0.1, a private address",
}


# -- the network: stubbed DNS, no connection beyond loopback ----------------------------------
@dataclass
class Network:
    answers: dict[str, list[list[str]]]  # name -> successive answers (the last one repeats)
    lookups: list[str] = field(default_factory=list)
    blocked: list[tuple] = field(default_factory=list)


def _loopback(family: int, address) -> bool:
    if family == getattr(socket, "AF_UNIX", None) or not isinstance(address, tuple):
        return True
    host = str(address[0]).split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


@pytest.fixture
def network(monkeypatch) -> Iterator[Network]:
    net = Network(
        answers={
            "public.test": [[PUBLIC]],
            "private.test": [["10.0.0.1"]],
            "mixed.test": [[PUBLIC, "10.0.0.1"]],
            "rebind.test": [[PUBLIC], ["10.0.0.1"]],  # public when first asked, private after
        }
    )
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 (socket's names)
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in net.answers:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        seen = sum(1 for n in net.lookups if n == name)
        net.lookups.append(name)
        steps = net.answers[name]
        port = int(port or 0)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in steps[min(seen, len(steps) - 1)]
        ]

    def guard(sock, address):
        if not _loopback(sock.family, address):
            net.blocked.append(tuple(address))
            raise OSError(errno.ENETUNREACH, f"test network: {address} is not loopback")

    def connect(sock, address):
        guard(sock, address)
        return _socket.socket.connect(sock, address)

    def connect_ex(sock, address):
        guard(sock, address)
        return _socket.socket.connect_ex(sock, address)

    real_create_connection = socket.create_connection

    def create_connection(address, *args, **kwargs):
        try:
            ipaddress.ip_address(str(address[0]))
        except ValueError:  # a name: resolved inside, each attempt goes through connect()
            pass
        else:
            if not _loopback(socket.AF_INET, address):
                net.blocked.append(tuple(address))
                raise OSError(errno.ENETUNREACH, f"test network: {address} is not loopback")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield net
    assert net.blocked == [], f"a connection beyond loopback was attempted: {net.blocked}"


@pytest.fixture
def policy(settings, network):
    """Nothing allow-listed (test settings admit any loopback port for the other tests)."""
    settings.OUTBOUND_ALLOWED_HOSTS = []
    return settings


@pytest.fixture
async def db_threads_closed():
    """Async tests' ORM calls run on asgiref's shared thread: close its connection afterwards,
    so the test database can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


# -- a loopback HTTP server with scripted answers ----------------------------------------------
@dataclass
class Server:
    url: str = ""
    port: int = 0
    requests: list[str] = field(default_factory=list)
    sent: int = 0  # body bytes the handler managed to write
    done: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def serve() -> Iterator:
    servers: list[ThreadingHTTPServer] = []

    def start(
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body_size: int = 0,
        declare_length: bool = True,
    ) -> Server:
        state = Server()

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                state.requests.append(f"{self.command} {self.path}")
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                if declare_length:
                    self.send_header("content-length", str(body_size))
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    while state.sent < body_size:
                        piece = chunk[: body_size - state.sent]
                        self.wfile.write(piece)
                        state.sent += len(piece)
                except OSError:
                    pass  # the client stopped reading and closed
                finally:
                    state.done.set()

            do_GET = do_POST = answer  # noqa: N815 (http.server's names)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        state.port = server.server_address[1]
        state.url = f"http://127.0.0.1:{state.port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# -- the admin ---------------------------------------------------------------------------------
class _FormFields(HTMLParser):
    """The fields a browser would submit from the admin's change form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._in_form = str(a.get("id", "")).endswith("_form") and a.get("id") != "logout-form"
        if not self._in_form or a.get("disabled") is not None:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.lstrip("\n") if not self.data[self._textarea] else data


def admin_save(client, path: str, **changes: str):
    page = client.get(path)
    assert page.status_code == 200
    parser = _FormFields()
    parser.feed(page.content.decode())
    return client.post(path, {**parser.data, **changes, "_save": "Save"})


def connector_create(**fields) -> Connector:
    values = {"slug": "crm", "name": "Acme CRM", "base_url": "https://public.test/api", **fields}
    return Connector.objects.create(**values)


def endpoint_create(url: str = "https://public.test/hooks") -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=url, secret=SECRET)


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "refusal"), REFUSED.items())
@pytest.mark.parametrize("field_name", ["base_url", "oauth2_token_url"])
def test_the_admin_refuses_a_connector_url_pointing_inwards(admin_client, policy, field_name, url, refusal):
    connector = connector_create(oauth2_token_url="https://public.test/token")
    path = f"/admin/connectors/connector/{connector.pk}/change/"

    response = admin_save(admin_client, path, **{field_name: url})

    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field_name]
    assert errors[field_name] == [
        f"{refusal}. If it is a system of yours, add its host to OUTBOUND_ALLOWED_HOSTS."
    ]
    assert refusal in response.content.decode()
    connector.refresh_from_db()
    assert (connector.base_url, connector.oauth2_token_url) == (
        "https://public.test/api",
        "https://public.test/token",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "refusal"), REFUSED.items())
def test_the_admin_refuses_a_webhook_endpoint_pointing_inwards(admin_client, policy, url, refusal):
    endpoint = endpoint_create()
    path = f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/"

    response = admin_save(admin_client, path, url=url)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {
        "url": [f"{refusal}. If it is a system of yours, add its host to OUTBOUND_ALLOWED_HOSTS."]
    }
    endpoint.refresh_from_db()
    assert endpoint.url == "https://public.test/hooks"


@pytest.mark.django_db
def test_the_admin_saves_public_and_allow_listed_urls(admin_client, policy):
    """The control for the two tests above: the same forms save when the address is allowed."""
    policy.OUTBOUND_ALLOWED_HOSTS = ["crm.internal.test:8443"]
    connector = connector_create()
    endpoint = endpoint_create()

    saved = admin_save(
        admin_client,
        f"/admin/connectors/connector/{connector.pk}/change/",
        base_url="https://crm.internal.test:8443/api",  # allow-listed: not even resolved
        oauth2_token_url="https://public.test/oauth/token",
    )
    hooked = admin_save(
        admin_client, f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/", url="https://public.test/v2"
    )

    assert (saved.status_code, hooked.status_code) == (302, 302)
    connector.refresh_from_db()
    endpoint.refresh_from_db()
    assert (connector.base_url, endpoint.url) == (
        "https://crm.internal.test:8443/api",
        "https://public.test/v2",
    )


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        *REFUSED.items(),
        ("http://mixed.test/", "refused: mixed.test resolves to 10.0.0.1, a private address"),
        ("http://[::1]/", "refused: ::1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "refused: ::ffff:10.0.0.1 is a private address"),
        ("http://[::ffff:169.254.169.254]/", "refused: ::ffff:169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/", "refused: fd00:ec2::254 is a cloud metadata address"),
        ("http://[fc00::1]/", "refused: fc00::1 is a private address"),
        ("http://[fe80::1]/", "refused: fe80::1 is a link-local address"),
        ("http://169.254.1.1/", "refused: 169.254.1.1 is a link-local address"),
        ("http://172.16.0.1/", "refused: 172.16.0.1 is a private address"),
        ("http://192.168.1.1/", "refused: 192.168.1.1 is a private address"),
        ("http://100.64.0.1/", "refused: 100.64.0.1 is a shared (CGNAT) address"),
        ("http://224.0.0.1/", "refused: 224.0.0.1 is a multicast address"),
        ("http://0.0.0.0/", "refused: 0.0.0.0 is an unspecified address"),
        ("http://240.0.0.1/", "refused: 240.0.0.1 is a reserved address"),
        ("file:///etc/passwd", "refused: only http and https URLs are allowed, not 'file'"),
    ],
)
def test_the_policy_names_why_an_address_is_refused(policy, url, refusal):
    from apps.core.outbound import OutboundRefused, outbound_url_check

    with pytest.raises(OutboundRefused) as refused:
        outbound_url_check(url)
    assert str(refused.value) == refusal


def test_the_allow_list_admits_a_named_host_and_port_only(policy):
    from apps.core.outbound import OutboundRefused, outbound_url_check

    policy.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:8100", "private.test"]
    outbound_url_check("http://127.0.0.1:8100/api")
    outbound_url_check("https://private.test:4443/")
    outbound_url_check("https://public.test/")
    with pytest.raises(OutboundRefused, match=r"^refused: 127.0.0.1 is a loopback address$"):
        outbound_url_check("http://127.0.0.1:8101/api")


# -- connector_import --------------------------------------------------------------------------
DOCUMENT = """
openapi: 3.0.3
info: {title: Inside, version: "1"}
servers: [{url: "%s"}]
paths:
  /status:
    get: {operationId: status, responses: {"200": {description: ok}}}
"""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("server", "base_url", "refusal"),
    [
        ("http://10.0.0.1/api", None, "refused: 10.0.0.1 is a private address"),
        ("http://private.test/api", None, "refused: private.test resolves to 10.0.0.1, a private address"),
        (
            "https://public.test/api",
            "http://169.254.169.254/",
            "refused: 169.254.169.254 is a cloud metadata address",
        ),
    ],
)
def test_connector_import_refuses_a_server_pointing_inwards(policy, tmp_path, server, base_url, refusal):
    document = tmp_path / "inside.yaml"
    document.write_text(DOCUMENT % server)
    args = [
        "--openapi",
        str(document),
        "--connector",
        "inside",
        *(["--base-url", base_url] if base_url else []),
    ]

    with pytest.raises(CommandError) as refused:
        call_command("connector_import", *args, stdout=io.StringIO())

    assert (
        str(refused.value)
        == f"{refusal}. If it is a system of yours, add its host to OUTBOUND_ALLOWED_HOSTS."
    )
    assert (Connector.objects.count(), Tool.objects.count()) == (0, 0)


# -- call time: tool calls ---------------------------------------------------------------------
def _conversation_with_tool(connector: Connector) -> Conversation:
    Tool.objects.create(
        connector=connector,
        name="account_status",
        description="The shop's account status.",
        parameters={"type": "object", "properties": {}},
        method="GET",
        path_template="/status",
        enabled=True,
    )
    return Conversation.objects.create(customer=CustomerFactory(external_id="sec-customer-1"))


async def call_tool(conversation: Conversation, name: str = "account_status", arguments: dict | None = None):
    box = await sync_to_async(toolbox_for)(
        conversation_id=str(conversation.pk), customer_id=str(conversation.customer_id), turn_id=""
    )
    outcome = await box.call(name, arguments or {})
    row = await ToolCall.objects.aget(pk=outcome.call_id)
    return outcome, row


async def call_connector_tool(**connector_fields):
    connector = await sync_to_async(connector_create)(max_attempts=3, **connector_fields)
    return await call_tool(await sync_to_async(_conversation_with_tool)(connector))


def _oauth2(token_url: str) -> dict[str, str]:
    return {
        "auth_type": "oauth2_client_credentials",
        "username": "kefu",
        "secret": "client-secret",
        "oauth2_token_url": token_url,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
@pytest.mark.parametrize(("url", "refusal"), REFUSED.items())
@pytest.mark.parametrize("where", ["base_url", "oauth2_token_url"])
async def test_a_tool_call_to_an_inward_address_fails_without_connecting(
    policy, network, serve, celery_worker_live, db_threads_closed, where, url, refusal
):
    listener = serve()  # something listening on loopback, to show that nothing reaches it
    if url.startswith("http://127.0.0.1"):
        url = f"{listener.url}/api"
    fields = {"base_url": url} if where == "base_url" else _oauth2(url)

    outcome, row = await call_connector_tool(**fields)

    assert (outcome.status, outcome.data) == ("failed", {"error": "refused", "message": refusal})
    assert (row.status, row.attempts, row.http_status) == ("failed", 1, None)  # final: not retried
    assert (listener.requests, network.blocked) == ([], [])


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
@pytest.mark.parametrize("where", ["base_url", "oauth2_token_url"])
async def test_a_name_that_turns_private_after_the_admin_saved_it_is_refused_at_call_time(
    policy, network, admin_client, celery_worker_live, db_threads_closed, where
):
    """DNS rebinding: the admin checks what the name resolves to when it is saved (public);
    the call resolves it again, checks that answer (10.0.0.1) and connects to nothing."""
    auth = _oauth2("https://public.test/token") if where == "oauth2_token_url" else {}
    connector = await sync_to_async(connector_create)(max_attempts=3, **auth)
    saved = await sync_to_async(admin_save)(
        admin_client, f"/admin/connectors/connector/{connector.pk}/change/", **{where: "http://rebind.test/x"}
    )
    assert saved.status_code == 302  # public when the admin looked

    outcome, row = await call_tool(await sync_to_async(_conversation_with_tool)(connector))

    refusal = "refused: rebind.test resolves to 10.0.0.1, a private address"
    assert (outcome.status, outcome.data) == ("failed", {"error": "refused", "message": refusal})
    assert (row.attempts, network.lookups.count("rebind.test"), network.blocked) == (1, 2, [])


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_a_redirect_from_an_allow_listed_system_is_not_followed(
    policy, network, serve, celery_worker_live, db_threads_closed
):
    crm = serve(status=302, headers={"location": "http://10.0.0.1/steal"})
    policy.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{crm.port}"]

    outcome, row = await call_connector_tool(base_url=f"{crm.url}/api")

    refusal = (
        "refused: 127.0.0.1 answered 302, a redirect to http://10.0.0.1/steal; redirects are not followed"
    )
    assert (outcome.status, outcome.data) == ("failed", {"error": "refused", "message": refusal})
    assert (row.attempts, row.http_status) == (1, 302)
    assert (crm.requests, network.blocked) == (["GET /api/status"], [])


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "until-close"])
async def test_an_answer_over_the_cap_is_refused_without_reading_all_of_it(
    policy, network, serve, celery_worker_live, db_threads_closed, declare_length
):
    crm = serve(body_size=BIG, declare_length=declare_length)
    policy.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{crm.port}"]

    outcome, row = await call_connector_tool(base_url=crm.url)

    refusal = f"refused: 127.0.0.1 sent more than {CAP} bytes"
    assert (outcome.status, outcome.data) == ("failed", {"error": "too_large", "message": refusal})
    assert (row.attempts, row.http_status) == (1, 200)
    assert await asyncio.to_thread(crm.done.wait, 60)  # the server saw the connection close
    assert crm.sent < BIG // 4  # 64 MiB offered; what loopback buffers took before the close


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_the_allow_listed_demo_crm_still_answers_a_tool_call(
    policy,
    network,
    demo_crm,  # noqa: F811 (the fixture)
    celery_worker_live,
    db_threads_closed,
):
    policy.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{demo_crm.port}"]
    policy.DEMO_CRM_TOKEN = "demo-crm-test-token"
    await sync_to_async(demo_connectors_setup)(base_url=demo_crm.url)
    customer = await sync_to_async(CustomerFactory)(external_id="demo-customer-1", name="Ada Lovelace")
    conversation = await Conversation.objects.acreate(customer=customer)

    outcome, row = await call_tool(conversation, "order_status", {"order_number": "PP-1001"})

    assert (outcome.status, outcome.source, outcome.data["status"]) == ("succeeded", "Demo CRM", "shipped")
    assert (row.attempts, row.http_status, network.blocked) == (1, 200, [])


# -- call time: outgoing webhooks --------------------------------------------------------------
def _delivery(url: str) -> EventDelivery:
    payload = EventPayload.objects.create(
        event_type="message.created", payload={"type": "message.created", "data": {}}
    )
    return EventDelivery.objects.create(payload=payload, endpoint=endpoint_create(url))


def _attempt(delivery: EventDelivery) -> EventDeliveryAttempt:
    (attempt,) = EventDeliveryAttempt.objects.filter(delivery=delivery)
    return attempt


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "refusal"), REFUSED.items())
def test_a_webhook_delivery_to_an_inward_address_fails_without_connecting(
    policy, network, serve, url, refusal
):
    listener = serve()
    if url.startswith("http://127.0.0.1"):
        url = f"{listener.url}/hooks"
    delivery = _delivery(url)

    result = outgoing_delivery_attempt(delivery_id=str(delivery.pk))

    attempt = _attempt(delivery)
    assert (result.status, result.attempt) == ("pending", 1)  # a failed attempt, retried later
    assert (attempt.response_status, attempt.response_body, attempt.error) == (None, "", refusal)
    assert (listener.requests, network.blocked) == ([], [])


@pytest.mark.django_db
def test_a_webhook_endpoint_that_turns_private_after_the_admin_saved_it_gets_nothing(
    policy, network, admin_client
):
    endpoint = endpoint_create()
    saved = admin_save(
        admin_client, f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/", url="http://rebind.test/h"
    )
    assert saved.status_code == 302
    payload = EventPayload.objects.create(event_type="message.created", payload={"type": "message.created"})
    delivery = EventDelivery.objects.create(payload=payload, endpoint=endpoint)

    outgoing_delivery_attempt(delivery_id=str(delivery.pk))

    assert _attempt(delivery).error == "refused: rebind.test resolves to 10.0.0.1, a private address"
    assert (network.lookups, network.blocked) == (["rebind.test", "rebind.test"], [])


@pytest.mark.django_db
def test_a_webhook_redirect_is_not_followed(policy, network, serve):
    subscriber = serve(status=307, headers={"location": "http://169.254.169.254/latest"})
    policy.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{subscriber.port}"]
    delivery = _delivery(f"{subscriber.url}/hooks")

    outgoing_delivery_attempt(delivery_id=str(delivery.pk))

    attempt = _attempt(delivery)
    assert (attempt.response_status, attempt.error) == (
        307,
        "refused: 127.0.0.1 answered 307, a redirect to http://169.254.169.254/latest; "
        "redirects are not followed",
    )
    assert (subscriber.requests, network.blocked) == (["POST /hooks"], [])


@pytest.mark.django_db
def test_a_webhook_answer_is_read_up_to_a_small_cap_and_kept_as_a_short_excerpt(policy, network, serve):
    subscriber = serve(body_size=BIG, declare_length=False)
    policy.OUTBOUND_ALLOWED_HOSTS = [f"127.0.0.1:{subscriber.port}"]
    delivery = _delivery(f"{subscriber.url}/hooks")

    result = outgoing_delivery_attempt(delivery_id=str(delivery.pk))

    attempt = _attempt(delivery)
    assert (result.status, attempt.response_status, attempt.error) == ("success", 200, "")
    assert attempt.response_body == "x" * 200
    assert subscriber.done.wait(60)
    assert subscriber.sent < BIG // 4
