"""Prometheus metrics from the agent's events, served by ``prometheus_client`` on a local port.

A registry of our own (no process-global one): counters of turns, interruptions, wake detections and errors
by stage; histograms of where a turn's time went; and the process's memory and CPU from the library's own
process collector (``process_resident_memory_bytes``, ``process_cpu_seconds_total``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Enum, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance.agent import events as ev
from appliance.agent.events import EventType
from appliance.agent.state import AgentState
from appliance.config import MetricsConfig
from appliance.errors import ConfigError
from appliance.providers.chains import Stages
from appliance.providers.pool import FALLBACK_BUCKETS
from appliance.service.stats import TurnStats

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds: fine around the one-second answer the appliance aims for."""


class _Counts(Collector):
    """The daemon's counts, read from its ``TurnStats`` when scraped: one tally serves status and metrics."""

    def __init__(self, stats: TurnStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield CounterMetricFamily("appliance_turns", "Replies finished (played, cut or failed)", value=s.turns)
        yield CounterMetricFamily("appliance_interruptions", "Replies the user cut by talking", value=s.interruptions)
        yield CounterMetricFamily(
            "appliance_false_interruptions", "Talk-overs without words: the reply resumed", value=s.false_interruptions
        )
        for name, documentation, label, counts in (
            ("appliance_wake_detections", "Wake words heard", "word", s.wakes),
            ("appliance_errors", "Failures by stage or device", "stage", s.errors),
        ):
            family = CounterMetricFamily(name, documentation, labels=[label])
            for value, count in sorted(counts.items()):
                family.add_metric([value], count)
            yield family


class _ProviderCounts(Collector):
    """Every request of a stage behind a fallback adapter, by provider and outcome (``ok``, ``error``,
    ``refused``, ``timeout``, ``skipped``), and the bytes sent off the device, read from the pools when scraped."""

    def __init__(self, stages: Stages) -> None:
        self._stages = stages

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "appliance_provider_requests",
            "Requests to each provider of a stage",
            labels=["stage", "provider", "outcome"],
        )
        for stage, pool in self._stages.pools().items():
            for (provider, outcome), count in sorted(pool.outcomes.items()):
                requests.add_metric([stage, provider, outcome], count)
        yield requests
        sent = CounterMetricFamily(
            "appliance_sent_off_device_bytes",
            "Bytes of the user's audio or text sent to a provider",
            labels=["provider", "kind"],
        )
        for (provider, kind), (_, nbytes) in sorted(self._stages.ledger.totals().items()):
            sent.add_metric([provider, kind], nbytes)
        yield sent


class Metrics:
    def __init__(self, stats: TurnStats, stages: Stages | None = None) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_Counts(stats))
        if stages is not None:
            self.registry.register(_ProviderCounts(stages))
        r = self.registry
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
        self.fallback = Histogram(
            "appliance_provider_fallback_seconds",
            "Seconds a stage's failed tries cost a turn before another provider answered",
            ["stage"],
            buckets=FALLBACK_BUCKETS,
            registry=r,
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
        session.on(EventType.AGENT_STATE_CHANGED, lambda e: self.state.state(e.new_state.value))

    def _on_metrics(self, event: ev.MetricsCollectedEvent) -> None:
        m = event.metrics
        for histogram, value in (
            (self.eos_to_first_audio, m.eos_to_first_audio),
            (self.stt, m.stt_latency),
            (self.ttft, m.llm_ttft),
            (self.ttfb, m.tts_ttfb),
        ):
            if value is not None:
                histogram.observe(value)
        for stage, failed in (("stt", m.stt_failed), ("llm", m.llm_failed), ("tts", m.tts_failed)):
            if failed:
                self.fallback.labels(stage).observe(sum(a.seconds for a in failed))

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
