"""The bot's Prometheus metrics: names, labels, what calls and the controller report, and
``GET /metrics`` on the status app."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from voicebot.config import HttpConfig
from voicebot.server.metrics import CALL_RESULTS, TURN_STAGES, Metrics
from voicebot.server.status import status_app


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def test_every_series_exists_from_the_start_at_zero() -> None:
    metrics = Metrics()
    for result in CALL_RESULTS:
        assert sample(metrics, "voicebot_calls_total", {"result": result}) == 0.0
    for stage in TURN_STAGES:
        assert sample(metrics, "voicebot_turn_latency_seconds_count", {"stage": stage}) == 0.0
    text = metrics.render().decode()
    for name in ("voicebot_calls_active", "voicebot_barge_ins_total",
                 "voicebot_rtp_packets_dropped_total", "voicebot_webhook_seconds",
                 "voicebot_ari_connected", "voicebot_worker_queue_depth"):  # fmt: skip
        assert name in text, name


def test_what_calls_report_is_counted() -> None:
    metrics = Metrics()
    metrics.turn({"total_ms": 412.0, "wait_ms": 300.0, "asr_ms": 95.0, "dialog_ms": 0.5,
                  "tts_ms": None, "send_ms": 1.0})  # fmt: skip
    metrics.barge_in()
    metrics.webhook(0.25)
    metrics.call_ended("completed", {"foreign_dropped": 25, "malformed_dropped": 0})
    metrics.call_ended("no-such-result")  # counted, as an error
    assert sample(metrics, "voicebot_turn_latency_seconds_sum", {"stage": "total"}) == 0.412
    assert sample(metrics, "voicebot_turn_latency_seconds_count", {"stage": "tts"}) == 0.0
    assert sample(metrics, "voicebot_barge_ins_total") == 1.0
    assert sample(metrics, "voicebot_webhook_seconds_count") == 1.0
    assert sample(metrics, "voicebot_calls_total", {"result": "completed"}) == 1.0
    assert sample(metrics, "voicebot_calls_total", {"result": "error"}) == 1.0
    assert sample(metrics, "voicebot_rtp_packets_dropped_total", {"reason": "foreign"}) == 25.0


def test_live_gauges_are_read_when_scraped() -> None:
    metrics = Metrics()
    state: dict[str, Any] = {"calls": 3, "connected": False, "queues": {"asr:whisper": 2}}
    metrics.watch(calls_active=lambda: state["calls"], ari_connected=lambda: state["connected"],
                  queue_depths=lambda: state["queues"])  # fmt: skip
    metrics.render()
    assert sample(metrics, "voicebot_calls_active") == 3.0
    assert sample(metrics, "voicebot_ari_connected") == 0.0
    assert sample(metrics, "voicebot_worker_queue_depth", {"engine": "asr:whisper"}) == 2.0
    state.update(calls=0, connected=True)
    metrics.render()
    assert sample(metrics, "voicebot_calls_active") == 0.0
    assert sample(metrics, "voicebot_ari_connected") == 1.0


async def test_the_status_app_serves_metrics_in_the_prometheus_text_format() -> None:
    metrics = Metrics()
    metrics.call_ended("busy")
    controller = SimpleNamespace(
        metrics=metrics, calls={}, recent=[], health=lambda: {}, draining=False
    )
    stream = SimpleNamespace(connected=True)
    app = status_app(controller, stream, HttpConfig(token="t0ken"))  # type: ignore[arg-type]
    async with TestServer(app) as server:
        async with aiohttp.ClientSession() as http:
            # No token: /metrics stays open to scrapers even when /calls needs one.
            async with http.get(server.make_url("/metrics")) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                body = await response.text()
    assert 'voicebot_calls_total{result="busy"} 1.0' in body


def test_results_delivery_is_counted_by_target() -> None:
    metrics = Metrics()
    for target in ("file", "webhook"):
        for name in ("voicebot_results_delivered_total", "voicebot_results_retried_total",
                     "voicebot_results_waiting", "voicebot_results_refused"):  # fmt: skip
            assert sample(metrics, name, {"target": target}) == 0.0, (name, target)
    metrics.result_delivered("webhook")
    metrics.result_retried("webhook")
    metrics.result_retried("webhook")
    metrics.results_backlog("webhook", 3, 1)
    assert sample(metrics, "voicebot_results_delivered_total", {"target": "webhook"}) == 1.0
    assert sample(metrics, "voicebot_results_retried_total", {"target": "webhook"}) == 2.0
    assert sample(metrics, "voicebot_results_waiting", {"target": "webhook"}) == 3.0
    assert sample(metrics, "voicebot_results_refused", {"target": "webhook"}) == 1.0
    assert sample(metrics, "voicebot_results_delivered_total", {"target": "file"}) == 0.0
