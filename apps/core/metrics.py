"""Prometheus metrics that every area increments, served at GET /metrics (staff or METRICS_TOKEN).

    from apps.core import metrics
    metrics.acks_total.inc(); metrics.ack_seconds.observe(elapsed)
    metrics.answers_total.labels(outcome="completed").inc()

Several processes (Daphne x N, Celery workers) on one machine: set PROMETHEUS_MULTIPROC_DIR to
an empty directory (e.g. var/prometheus, emptied when the machine's processes start) before they
start; each process then writes its samples there and /metrics on any of them sums them all.
Without it, each process counts alone and /metrics shows the process that answered.
"""

from __future__ import annotations

import logging
import os

import redis
from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

# Latency buckets from 5 ms to 30 s: acks are milliseconds, first tokens seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

sockets_open = Gauge("kefu_sockets_open", "WebSockets open now", multiprocess_mode="livesum")
acks_total = Counter("kefu_acks_total", "Customer messages acknowledged")
ack_seconds = Histogram("kefu_ack_seconds", "Customer message frame received -> ack sent", buckets=_BUCKETS)
answer_first_token_seconds = Histogram(
    "kefu_answer_first_token_seconds", "Answer due -> first token broadcast", buckets=_BUCKETS
)
answers_total = Counter("kefu_answers_total", "Assistant answers finished", ["outcome"])
tool_calls_total = Counter("kefu_tool_calls_total", "Tool calls finished", ["status"])
webhooks_received_total = Counter("kefu_webhooks_received_total", "Webhook deliveries received", ["status"])


class CeleryQueueDepthCollector:
    """Tasks waiting in each Celery queue, read from the Redis broker (LLEN) at scrape time."""

    def collect(self):
        family = GaugeMetricFamily("kefu_celery_queue_depth", "Tasks waiting in a Celery queue",
                                   labels=["queue"])
        try:
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2,
                                          socket_connect_timeout=2)
            try:
                for queue in settings.METRICS_CELERY_QUEUES:
                    family.add_metric([queue], client.llen(queue))
            finally:
                client.close()
        except (redis.RedisError, ValueError):  # broker down or not Redis: no samples, not an error page
            logger.warning("celery queue depth unavailable", exc_info=True)
        yield family


_scrape_time_registry = CollectorRegistry(auto_describe=False)
_scrape_time_registry.register(CeleryQueueDepthCollector())


def metrics_exposition() -> bytes:
    """The Prometheus text format of every metric (all processes when multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_scrape_time_registry)
