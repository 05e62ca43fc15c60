"""Prometheus metrics from the agent's events, served by ``prometheus_client`` on a local port.

A registry of our own (no process-global one): counters of turns, interruptions, wake detections and errors
by stage; histograms of where a turn's time went; and the process's memory and CPU from the library's own
process collector (``process_resident_memory_bytes``, ``process_cpu_seconds_total``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, ProcessCollector, start_http_server

from appliance.agent import events as ev
from appliance.agent.events import EventType
from appliance.agent.state import AgentState
from appliance.config import MetricsConfig
from appliance.errors import ConfigError

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds: fine around the one-second answer the appliance aims for."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.turns = Counter("appliance_turns", "Replies finished (played, cut or failed)", registry=r)
        self.interruptions = Counter("appliance_interruptions", "Replies the user cut by talking", registry=r)
        self.false_interruptions = Counter(
            "appliance_false_interruptions", "Talk-overs without words: the reply resumed", registry=r
        )
        self.wake = Counter("appliance_wake_detections", "Wake words heard", ["word"], registry=r)
        self.errors = Counter("appliance_errors", "Failures by stage or device", ["stage"], registry=r)
        self.eos_to_first_audio = Histogram(
            "appliance_eos_to_first_audio_seconds",
            "End of the user's speech to the first reply sample at the speaker",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stt = Histogram(
            "appliance_stt_latency_seconds", "whisper.cpp time per utterance", buckets=LATENCY_BUCKETS, registry=r
        )
        self.ttft = Histogram(
            "appliance_llm_ttft_seconds", "LLM request to first token", buckets=LATENCY_BUCKETS, registry=r
        )
        self.ttfb = Histogram(
            "appliance_tts_ttfb_seconds", "Text to first synthesized audio", buckets=LATENCY_BUCKETS, registry=r
        )
        self.state = Enum(
            "appliance_agent_state", "The agent's state", states=[s.value for s in AgentState], registry=r
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A value read when scraped (dropped microphone blocks, say)."""
        Gauge(name, documentation, registry=self.registry).set_function(read)

    def attach(self, session: ev.EventEmitter) -> None:
        session.on(EventType.METRICS_COLLECTED, self._on_metrics)
        session.on(EventType.WAKE_WORD_DETECTED, lambda e: self.wake.labels(e.name).inc())
        session.on(EventType.AGENT_FALSE_INTERRUPTION, lambda e: self.false_interruptions.inc())
        session.on(EventType.ERROR, lambda e: self.errors.labels(e.source).inc())
        session.on(EventType.AGENT_STATE_CHANGED, lambda e: self.state.state(e.new_state.value))

    def _on_metrics(self, event: ev.MetricsCollectedEvent) -> None:
        m = event.metrics
        self.turns.inc()
        if m.interrupted:
            self.interruptions.inc()
        for histogram, value in (
            (self.eos_to_first_audio, m.eos_to_first_audio),
            (self.stt, m.stt_latency),
            (self.ttft, m.llm_ttft),
            (self.ttfb, m.tts_ttfb),
        ):
            if value is not None:
                histogram.observe(value)

    def serve(self, config: MetricsConfig) -> None:
        """Start the HTTP endpoint (a daemon thread of the library's); a taken port fails at start."""
        try:
            self._server, self._thread = start_http_server(config.port, addr=config.host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"metrics.port {config.port} on {config.host} cannot be used ({exc.strerror}); "
                "choose a free port or set metrics.enabled = false"
            ) from exc
        logger.info("metrics", extra={"url": f"http://{config.host}:{config.port}/metrics"})

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
