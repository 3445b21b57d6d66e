"""Abuse limits shared by every process: sessions per IP in Redis (HTTP 429; while Redis is away
each process counts on its own), messages and assistant answers per customer on the customer's
row in Postgres; socket limits in the socket's process."""

import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from apps.core.ratelimit import limit_check, limit_hit, limit_windows
from apps.customers.models import Customer
from apps.customers.services import customer_answer_admit

URL = "/api/widget/session"


def post(client, ip: str):
    return client.post(URL, data="", content_type="application/json", REMOTE_ADDR=ip)


def unique_ip() -> str:
    n = uuid.uuid4().int
    return f"198.18.{n % 250}.{(n >> 8) % 250 + 1}"


@pytest.mark.django_db
def test_sessions_over_the_per_ip_limit_are_429_rate_limited_with_retry_after(client, settings):
    settings.RATELIMIT_SESSION_IP = "3/minute"
    ip, other_ip = unique_ip(), unique_ip()

    statuses = [post(client, ip).status_code for _ in range(3)]
    refused = post(client, ip)
    elsewhere = post(client, other_ip)

    assert statuses == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert elsewhere.status_code == 201
    assert Customer.objects.count() == 4


@pytest.mark.django_db
def test_retry_after_is_when_a_session_is_accepted_again(client, settings):
    settings.RATELIMIT_SESSION_IP = "2 per 2 second"
    ip = unique_ip()
    assert [post(client, ip).status_code for _ in range(2)] == [201, 201]
    refused = post(client, ip)
    wait = int(refused["Retry-After"])

    assert refused.status_code == 429 and 1 <= wait <= 2
    time.sleep(wait)  # the moving window: the oldest session has left it by then
    assert post(client, ip).status_code == 201


@pytest.mark.django_db
def test_an_empty_rate_switches_the_limit_off(client, settings):
    settings.RATELIMIT_SESSION_IP = ""
    ip = unique_ip()

    assert {post(client, ip).status_code for _ in range(5)} == {201}


@pytest.mark.e2e
async def test_the_session_limit_is_shared_by_two_server_processes(web_server):
    env = {"RATELIMIT_SESSION_IP": "4/minute"}
    servers = [web_server(**env), web_server(**env)]
    async with httpx.AsyncClient(timeout=30) as http:
        statuses = []
        for i in range(6):  # alternate between the processes
            response = await http.post(f"{servers[i % 2].http_url}{URL}", json={})
            statuses.append(response.status_code)

    assert statuses == [201, 201, 201, 201, 429, 429]


@pytest.mark.django_db
def test_answers_per_customer_are_limited_per_customer():
    customer, other = Customer.objects.create(), Customer.objects.create()
    rates = {"amounts": [2], "windows_s": [3600]}

    admitted = [customer_answer_admit(customer_id=customer.pk, **rates) for _ in range(3)]
    other_admitted = customer_answer_admit(customer_id=other.pk, **rates)

    assert admitted == [True, True, False]
    assert other_admitted is True
    customer.refresh_from_db()
    assert len(customer.answer_hits) == 2  # a refused answer is not counted


@pytest.mark.django_db
def test_an_answer_is_admitted_again_once_the_oldest_hit_leaves_the_window():
    customer = Customer.objects.create()
    Customer.objects.filter(pk=customer.pk).update(
        answer_hits=[timezone.now() - timedelta(minutes=30), timezone.now() - timedelta(minutes=61)])
    rates = {"amounts": [2, 100], "windows_s": [3600, 86400]}

    assert customer_answer_admit(customer_id=customer.pk, **rates) is True  # one of two in the hour
    assert customer_answer_admit(customer_id=customer.pk, **rates) is False
    assert customer_answer_admit(customer_id=customer.pk, amounts=[], windows_s=[]) is True  # switched off


def test_the_customers_rates_are_read_for_postgres_as_amounts_and_windows(settings):
    # Counted by the chat's statement (tests/realtime/test_message_rate.py) and the claim of an
    # answer (tests/assistant/test_turn_claim.py); the rates come from here.
    settings.RATELIMIT_MESSAGE_CUSTOMER = "20/minute;200/hour"
    settings.RATELIMIT_ANSWER_CUSTOMER_HOUR = "60/hour"
    assert limit_windows("message_customer") == ([20, 200], [60, 3600])
    assert limit_windows("answer_customer_hour") == ([60], [3600])
    settings.RATELIMIT_MESSAGE_CUSTOMER = ""
    assert limit_windows("message_customer") == ([], [])


@pytest.mark.django_db(transaction=True)
def test_concurrent_answers_never_admit_more_than_the_limit():
    from django.db import connection

    customer = Customer.objects.create()
    start = threading.Barrier(10)
    admitted: list[bool] = []

    def answer() -> None:
        start.wait()
        try:
            admitted.append(customer_answer_admit(customer_id=customer.pk, amounts=[5], windows_s=[3600]))
        finally:
            connection.close()

    threads = [threading.Thread(target=answer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(admitted) == [False] * 5 + [True] * 5


def test_settings_check_names_a_rate_that_does_not_parse_and_a_message_window_too_large(settings):
    from apps.core.checks import rate_limit_settings_check

    assert rate_limit_settings_check() == []
    settings.RATELIMIT_SESSION_IP = "thirty a minute"
    settings.RATELIMIT_MESSAGE_CUSTOMER = "20/minute;5000/day"

    assert [problem.id for problem in rate_limit_settings_check()] == ["core.E001", "core.E002"]


def closed_port_redis_url() -> str:
    from apps.devstack.embedded.ports import free_port

    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.mark.django_db
def test_without_redis_sessions_are_created_and_still_limited_per_process(client, settings):
    settings.RATELIMIT_SESSION_IP = "2/minute"
    settings.REDIS_URL = closed_port_redis_url()
    ip, other_ip = unique_ip(), unique_ip()

    statuses = [post(client, ip).status_code for _ in range(3)]
    elsewhere = post(client, other_ip)

    assert statuses == [201, 201, 429]
    assert elsewhere.status_code == 201


def test_counting_returns_to_redis_once_it_answers_again(settings, monkeypatch):
    from apps.core import ratelimit

    monkeypatch.setattr(ratelimit, "REDIS_RETRY_S", 0.0)
    settings.RATELIMIT_SESSION_IP = "2/minute"
    ip = unique_ip()
    real_redis = settings.REDIS_URL
    settings.REDIS_URL = closed_port_redis_url()
    assert limit_check(name="session_ip", key=ip).limited is False  # counted in memory

    settings.REDIS_URL = real_redis
    # Redis holds its own count again: two hits admitted there, the third refused.
    hits = [limit_check(name="session_ip", key=ip).limited for _ in range(3)]
    assert hits == [False, False, True]


@pytest.mark.django_db
def test_ipv6_clients_are_counted_per_64_prefix(client, settings):
    settings.RATELIMIT_SESSION_IP = "2/minute"
    prefix = f"2001:db8:{uuid.uuid4().int % 65536:x}:1"

    statuses = [post(client, f"{prefix}::{n}").status_code for n in (1, 2, 3)]
    other_64 = post(client, f"{prefix[:-1]}2::1")

    assert statuses == [201, 201, 429]
    assert other_64.status_code == 201


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_socket_limits_are_moving_windows_per_socket_dropped_with_it(monkeypatch):
    from apps.core import ratelimit

    clock = _Clock()
    monkeypatch.setattr(ratelimit, "time", clock)
    timers = {t for t in threading.enumerate() if isinstance(t, threading.Timer)}
    socket, other = uuid.uuid4().hex, uuid.uuid4().hex

    # "10 per 20 seconds": ten at once, the eleventh refused (and not counted) ...
    burst = [await limit_hit(name="message_socket", key=socket) for _ in range(11)]
    assert burst == [False] * 10 + [True]
    assert await limit_hit(name="message_socket", key=other) is False
    # ... until the ten leave the window, which then admits ten more.
    clock.now += 19.9
    assert await limit_hit(name="message_socket", key=socket) is True
    clock.now += 0.1
    assert [await limit_hit(name="message_socket", key=socket) for _ in range(11)] == [False] * 10 + [True]
    # Moving: five now, five 10 s later; 20 s after the first five, five have left.
    clock.now += 100
    for _ in range(2):
        assert [await limit_hit(name="message_socket", key=socket) for _ in range(5)] == [False] * 5
        clock.now += 10
    assert [await limit_hit(name="message_socket", key=socket) for _ in range(6)] == [False] * 5 + [True]
    # A closed socket's windows go with it: a new socket id never inherits them.
    ratelimit.limit_forget(key=socket)
    assert await limit_hit(name="message_socket", key=socket) is False
    # Nothing runs between hits: no thread was started (limits' MemoryStorage re-arms one).
    assert {t for t in threading.enumerate() if isinstance(t, threading.Timer)} <= timers


def test_in_memory_windows_say_when_to_retry_and_prune_idle_keys(monkeypatch):
    from apps.core import ratelimit

    clock = _Clock()
    monkeypatch.setattr(ratelimit, "time", clock)
    monkeypatch.setattr(ratelimit.MovingWindows, "PRUNE_AT", 4)
    windows = ratelimit.MovingWindows()
    items = ratelimit._parsed("2/minute")
    assert [windows.hit("message_customer", "a", items) for _ in range(3)] == [0, 0, 60]
    clock.now += 45
    assert windows.hit("message_customer", "a", items) == 15  # the first hit leaves in 15 s
    windows.hit("message_customer", "b", items)
    hourly = ratelimit._parsed("2/hour")
    windows.hit("session_ip", "h", hourly)
    clock.now += 61
    # A fourth key grows the table to the pruning size: "a" and "b" idled longer than their
    # minute and go; "h" is still inside its hour and stays (and still counts), as does the new key.
    windows.hit("message_customer", "c", items)
    assert list(windows._hits) == ["h", "c"]
    assert [windows.hit("session_ip", "h", hourly) for _ in range(2)] == [0, 3539]  # 1045 + 3600 - 1106
    # A rate changed under a key (a setting) counts in its own window, from zero.
    assert windows.hit("message_customer", "c", ratelimit._parsed("1/minute")) == 0


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_session_requests_waits_for_redis_instead_of_counting_in_process(settings, caplog):
    """Django runs each request's sync view in a thread of its own: 150 customers opening the
    widget while Redis answers slowly hold 150 connections at once. Past the client's pool size
    they wait for a free one; they never fall back to counting in this process."""
    import redis
    from django.db import connection
    from django.test import Client

    settings.RATELIMIT_SESSION_IP = "100/minute"
    ip = unique_ip()
    limit_check(name="session_ip", key=unique_ip())  # the limiter and its pool exist
    start = threading.Barrier(151)
    admitted: list[bool] = []

    def session() -> None:
        client = Client()
        start.wait()
        try:
            status = post(client, ip).status_code
        finally:
            connection.close()
        assert status in (201, 429)
        admitted.append(status == 201)

    threads = [threading.Thread(target=session) for _ in range(150)]
    for thread in threads:
        thread.start()
    with redis.Redis.from_url(settings.REDIS_URL) as other:
        other.execute_command("CLIENT", "PAUSE", 700)  # every command waits 0.7 s
        start.wait()
        for thread in threads:
            thread.join()

    assert not [r for r in caplog.records if "counted in this process only" in r.getMessage()]
    assert sorted(admitted) == [False] * 50 + [True] * 100
