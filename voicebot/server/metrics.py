"""Prometheus metrics of one bot process, served as ``GET /metrics`` on the status port.

Each ``Metrics`` has its own registry (tests and benches build several bots in one process;
nothing here is module-global). The controller and the calls write to it as things happen;
gauges that mirror live state (active calls, ARI link, worker queues) are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ..call import CallObserver
from ..call.amd import Verdict
from ..outbound.model import ATTEMPT_OUTCOMES
from .leg import CallResult
from .results import TARGETS as RESULT_TARGETS

CALL_RESULTS = tuple(result.value for result in CallResult)
TURN_STAGES = ("endpointing", "asr", "dialog", "tts", "send", "total")
# The stages of a turn as TurnTiming.as_dict() names them.
_STAGE_KEYS = {
    "endpointing": "wait_ms",
    "asr": "asr_ms",
    "dialog": "dialog_ms",
    "tts": "tts_ms",
    "send": "send_ms",
    "total": "total_ms",
}
# Endpoint counters (RtpStats) that are packets thrown away, by reason.
DROP_REASONS = {
    "foreign": "foreign_dropped",
    "malformed": "malformed_dropped",
    "wrong_payload_type": "wrong_payload_type_dropped",
    "overflow": "overflow_dropped",
    "late": "late",
    "duplicate": "duplicates",
    "send_failed": "send_dropped",
}
_AMD_BUCKETS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics(CallObserver):
    """The bot's Prometheus metrics; observes every call's turns, barge-ins and webhooks."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.calls_active = Gauge(
            "voicebot_calls_active", "Calls being served now.", registry=registry
        )
        self.calls = Counter(
            "voicebot_calls", "Calls by how they ended.", ["result"], registry=registry
        )
        self.turn_latency = Histogram(
            "voicebot_turn_latency_seconds",
            "Caller turns: time per stage, from the caller's last voiced frame (endpointing: to "
            "the decision; total: to the answer's first RTP packet).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.barge_ins = Counter(
            "voicebot_barge_ins", "Prompts stopped by the caller's speech or keys.",
            registry=registry,
        )  # fmt: skip
        self.rtp_dropped = Counter(
            "voicebot_rtp_packets_dropped", "RTP packets thrown away, by reason.", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.webhook_seconds = Histogram(
            "voicebot_webhook_seconds", "Webhook calls of the dialog scripts, whole round trip.",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.ari_connected = Gauge(
            "voicebot_ari_connected", "1 while the ARI WebSocket is connected.", registry=registry
        )
        self.worker_queue_depth = Gauge(
            "voicebot_worker_queue_depth",
            "Jobs waiting for or running on an engine's worker threads.",
            ["engine"],
            registry=registry,
        )
        self.results_delivered = Counter(
            "voicebot_results_delivered", "Call result records delivered, by target.",
            ["target"], registry=registry,
        )  # fmt: skip
        self.results_retried = Counter(
            "voicebot_results_retried",
            "Deliveries of call result records that failed and will be tried again.",
            ["target"], registry=registry,
        )  # fmt: skip
        self.results_waiting = Gauge(
            "voicebot_results_waiting", "Call result records waiting in the outbox.",
            ["target"], registry=registry,
        )  # fmt: skip
        self.results_refused = Gauge(
            "voicebot_results_refused",
            "Call result records the target refused (HTTP 3xx/4xx): kept in the outbox and "
            "sent again at the next start.",
            ["target"], registry=registry,
        )  # fmt: skip
        self.outbound_attempts = Counter(
            "voicebot_outbound_attempts", "Campaign call attempts, by outcome.", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.amd_verdicts = Counter(
            "voicebot_amd_verdicts", "Answering-machine detection verdicts on outbound calls.",
            ["verdict"], registry=registry,
        )  # fmt: skip
        self.amd_decision_seconds = Histogram(
            "voicebot_amd_decision_seconds",
            "From an outbound call's answer to the answering-machine verdict.",
            ["verdict"], buckets=_AMD_BUCKETS, registry=registry,
        )  # fmt: skip
        for outcome in ATTEMPT_OUTCOMES:
            self.outbound_attempts.labels(outcome.value)
        for verdict in Verdict:
            self.amd_verdicts.labels(verdict.value)
            self.amd_decision_seconds.labels(verdict.value)
        for result in CALL_RESULTS:
            self.calls.labels(result)
        for target in RESULT_TARGETS:
            for series in (self.results_delivered, self.results_retried, self.results_waiting,
                           self.results_refused):  # fmt: skip
                series.labels(target)
        for stage in TURN_STAGES:
            self.turn_latency.labels(stage)
        for reason in DROP_REASONS:
            self.rtp_dropped.labels(reason)

    # -- live state, read at scrape time ---------------------------------------------------

    def watch(
        self,
        *,
        calls_active: Callable[[], int],
        ari_connected: Callable[[], bool],
        queue_depths: Callable[[], Mapping[str, int]],
    ) -> None:
        self.calls_active.set_function(lambda: float(calls_active()))
        self.ari_connected.set_function(lambda: 1.0 if ari_connected() else 0.0)
        self._queue_depths = queue_depths

    # -- what calls report (the session's CallObserver) -------------------------------------

    def turn(self, timing: Mapping[str, float | None]) -> None:
        """One answered turn, as ``TurnTiming.as_dict()``."""
        for stage, key in _STAGE_KEYS.items():
            value = timing.get(key)
            if value is not None:
                self.turn_latency.labels(stage).observe(max(0.0, float(value)) / 1000.0)

    def barge_in(self) -> None:
        self.barge_ins.inc()

    def webhook(self, seconds: float) -> None:
        self.webhook_seconds.observe(seconds)

    # -- what the controller reports -------------------------------------------------------

    def call_ended(self, result: CallResult | str, rtp: Mapping[str, int] | None = None) -> None:
        self.calls.labels(result if result in CALL_RESULTS else "error").inc()
        for reason, key in DROP_REASONS.items():
            count = (rtp or {}).get(key, 0)
            if count:
                self.rtp_dropped.labels(reason).inc(count)

    def outbound_attempt(self, outcome: str) -> None:
        self.outbound_attempts.labels(outcome).inc()

    def amd_verdict(self, verdict: str, at_s: float) -> None:
        self.amd_verdicts.labels(verdict).inc()
        self.amd_decision_seconds.labels(verdict).observe(max(0.0, at_s))

    # -- what the results outbox reports (server.results.ResultsObserver) ----------------

    def result_delivered(self, target: str) -> None:
        self.results_delivered.labels(target).inc()

    def result_retried(self, target: str) -> None:
        self.results_retried.labels(target).inc()

    def results_backlog(self, target: str, waiting: int, refused: int) -> None:
        self.results_waiting.labels(target).set(waiting)
        self.results_refused.labels(target).set(refused)

    def render(self) -> bytes:
        depths = getattr(self, "_queue_depths", None)
        if depths is not None:
            for engine, depth in depths().items():
                self.worker_queue_depth.labels(engine).set(depth)
        return generate_latest(self.registry)
