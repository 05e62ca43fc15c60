"""What the daemon has done so far, kept from the agent's events: for ``status`` and the metrics."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from appliance.agent import events as ev
from appliance.agent.events import EventType, TurnMetrics
from appliance.utils.stats import percentile

RECENT_TURNS = 200
"""Turns the percentiles are taken over."""
LATENCIES = ("eos_to_first_audio", "stt_latency", "llm_ttft", "tts_ttfb")


@dataclass
class TurnStats:
    started: float = field(default_factory=time.monotonic)
    turns: int = 0
    interruptions: int = 0
    false_interruptions: int = 0
    wakes: collections.Counter[str] = field(default_factory=collections.Counter)
    """Wake detections by word."""
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    last_turn: TurnMetrics | None = None
    last_turn_at: float | None = None
    recent: collections.deque[TurnMetrics] = field(default_factory=lambda: collections.deque(maxlen=RECENT_TURNS))

    def attach(self, session: ev.EventEmitter) -> None:
        session.on(EventType.METRICS_COLLECTED, self._on_metrics)
        session.on(EventType.WAKE_WORD_DETECTED, self._on_wake)
        session.on(EventType.AGENT_FALSE_INTERRUPTION, self._on_false_interruption)
        session.on(EventType.ERROR, self._on_error)

    def _on_metrics(self, event: ev.MetricsCollectedEvent) -> None:
        self.turns += 1
        self.interruptions += int(event.metrics.interrupted)
        self.last_turn, self.last_turn_at = event.metrics, time.time()
        self.recent.append(event.metrics)

    def _on_wake(self, event: ev.WakeWordDetectedEvent) -> None:
        self.wakes[event.name] += 1

    def _on_false_interruption(self, event: ev.AgentFalseInterruptionEvent) -> None:
        self.false_interruptions += 1

    def _on_error(self, event: ev.ErrorEvent) -> None:
        self.errors[event.source] += 1

    def latency(self, name: str) -> dict[str, float | int | None]:
        values = [v for m in self.recent if (v := getattr(m, name)) is not None]
        if not values:
            return {"n": 0, "p50": None, "p95": None}
        return {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}

    def snapshot(self) -> dict[str, Any]:
        return {
            "uptime": round(time.monotonic() - self.started, 1),
            "turns": self.turns,
            "interruptions": self.interruptions,
            "false_interruptions": self.false_interruptions,
            "wake_detections": sum(self.wakes.values()),
            "errors": dict(self.errors),
            "last_turn": self.last_turn.as_dict() if self.last_turn else None,
            "last_turn_at": self.last_turn_at,
            "latency": {name: self.latency(name) for name in LATENCIES},
        }
