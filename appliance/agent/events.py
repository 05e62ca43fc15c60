"""What the agent tells the world: typed events, subscribed to with ``session.on(name, callback)``."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from appliance.agent.toolcalls import ToolCallMetrics
from appliance.llm.base import ChatItem, ChatMessage, FunctionCall, FunctionCallItem, FunctionOutputItem
from appliance.llm.chat import item_to_dict
from appliance.providers.attempt import FailedAttempt

if TYPE_CHECKING:
    from appliance.agent.speech import SpeechHandle
    from appliance.agent.state import AgentState

logger = logging.getLogger(__name__)


class EventType(enum.StrEnum):
    AGENT_STATE_CHANGED = "agent_state_changed"
    WAKE_WORD_DETECTED = "wake_word_detected"
    USER_STARTED_SPEAKING = "user_started_speaking"
    USER_STOPPED_SPEAKING = "user_stopped_speaking"
    USER_INPUT_TRANSCRIBED = "user_input_transcribed"
    CONVERSATION_ITEM_ADDED = "conversation_item_added"
    CONVERSATION_ITEM_UPDATED = "conversation_item_updated"
    SPEECH_CREATED = "speech_created"
    SPEECH_PAUSED = "speech_paused"
    AGENT_FALSE_INTERRUPTION = "agent_false_interruption"
    METRICS_COLLECTED = "metrics_collected"
    ERROR = "error"
    AVAILABILITY_CHANGED = "availability_changed"
    FUNCTION_TOOLS_EXECUTED = "function_tools_executed"
    FUNCTION_CHAIN_TOO_LONG = "function_chain_too_long"
    PREEMPTIVE_DISCARDED = "preemptive_discarded"


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class AgentStateChangedEvent:
    old_state: AgentState
    new_state: AgentState
    reason: str
    """Why: the wake word, a timeout, the end of a reply..."""
    type: Literal[EventType.AGENT_STATE_CHANGED] = EventType.AGENT_STATE_CHANGED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class WakeWordDetectedEvent:
    name: str
    score: float
    type: Literal[EventType.WAKE_WORD_DETECTED] = EventType.WAKE_WORD_DETECTED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class UserStartedSpeakingEvent:
    type: Literal[EventType.USER_STARTED_SPEAKING] = EventType.USER_STARTED_SPEAKING
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class UserStoppedSpeakingEvent:
    speech_duration: float
    """Seconds of speech in the utterance."""
    type: Literal[EventType.USER_STOPPED_SPEAKING] = EventType.USER_STOPPED_SPEAKING
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class UserInputTranscribedEvent:
    transcript: str
    is_final: bool
    """False for the early transcript taken during the endpointing silence."""
    confidence: float = 0.0
    type: Literal[EventType.USER_INPUT_TRANSCRIBED] = EventType.USER_INPUT_TRANSCRIBED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ConversationItemAddedEvent:
    item: ChatItem
    type: Literal[EventType.CONVERSATION_ITEM_ADDED] = EventType.CONVERSATION_ITEM_ADDED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ConversationItemUpdatedEvent:
    """The reply being spoken, as far as the user has heard it so far (the same ``id`` as the item added
    when it ends): what a record keeps if the device stops mid-reply."""

    item: ChatItem
    type: Literal[EventType.CONVERSATION_ITEM_UPDATED] = EventType.CONVERSATION_ITEM_UPDATED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class SpeechCreatedEvent:
    speech_handle: SpeechHandle
    source: Literal["say", "generate_reply"]
    user_initiated: bool
    """Created by a call of the program (say/generate_reply), not by a user's turn."""
    type: Literal[EventType.SPEECH_CREATED] = EventType.SPEECH_CREATED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class SpeechPausedEvent:
    """The user talked over the agent long enough: the speaker went silent (the interruption decision)."""

    speech_id: str
    type: Literal[EventType.SPEECH_PAUSED] = EventType.SPEECH_PAUSED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class AgentFalseInterruptionEvent:
    """The talk-over held no words: the reply resumed where it stopped."""

    speech_id: str
    type: Literal[EventType.AGENT_FALSE_INTERRUPTION] = EventType.AGENT_FALSE_INTERRUPTION
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class PreemptiveDiscardedEvent:
    """A reply started on the early transcript was thrown away: the user went on speaking, or the final
    transcript differed. Its work was stopped at the engines."""

    reason: str
    seconds: float
    """How long it had run."""
    cpu_seconds: float
    """CPU the process used while it ran (the preemptive work, with the little else that ran meanwhile)."""
    type: Literal[EventType.PREEMPTIVE_DISCARDED] = EventType.PREEMPTIVE_DISCARDED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class TurnMetrics:
    """Where the time of one turn went, in seconds (None: the stage did not run)."""

    speech_id: str
    end_of_utterance_delay: float | None = None
    """End of the user's speech -> the turn was decided (the endpointing silence plus processing)."""
    transcription_delay: float | None = None
    """End of the user's speech -> the final transcript."""
    stt_latency: float | None = None
    """Time whisper.cpp spent on the utterance."""
    stt_speculative: bool = False
    """The transcript was computed during the endpointing silence and kept."""
    turn_completion: float | None = None
    """The turn detector's probability that the utterance was complete (None: no detector)."""
    turn_detector_latency: float | None = None
    """Seconds the turn detector took on the pause that ended the utterance."""
    preemptive: bool = False
    """The reply was started during the endpointing silence, on the early transcript, and used."""
    llm_ttft: float | None = None
    llm_ttlt: float | None = None
    """Request -> last token."""
    llm_prompt_tokens: int = 0
    llm_cached_tokens: int = 0
    """Of the prompt, tokens the model had in its cache (not computed again)."""
    llm_completion_tokens: int = 0
    tts_ttfb: float | None = None
    eos_to_first_audio: float | None = None
    """End of the user's speech -> the first reply sample at the speaker (device latency included)."""
    played: float = 0.0
    """Seconds of the reply the user heard."""
    interrupted: bool = False
    stt_provider: str = ""
    """Who served each stage ("local", "openai"...; empty: the stage's only engine)."""
    llm_provider: str = ""
    tts_provider: str = ""
    stt_failed: tuple[FailedAttempt, ...] = ()
    """The tries of each stage that failed before its provider answered (provider, outcome, seconds)."""
    llm_failed: tuple[FailedAttempt, ...] = ()
    tts_failed: tuple[FailedAttempt, ...] = ()
    tool_steps: int = 0
    """Rounds of tool calls the reply took."""
    tool_calls: tuple[ToolCallMetrics, ...] = ()
    """Each call: the tool, its seconds and its outcome."""

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class MetricsCollectedEvent:
    metrics: TurnMetrics
    type: Literal[EventType.METRICS_COLLECTED] = EventType.METRICS_COLLECTED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ErrorEvent:
    error: Exception
    source: str
    """The stage or device that failed: "microphone", "speaker", "stt", "llm", "tts", "wake"."""
    recoverable: bool
    """The session goes on (a retry is under way, or only this turn was lost)."""
    type: Literal[EventType.ERROR] = EventType.ERROR
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class AvailabilityChangedEvent:
    """A provider of a stage was taken out of the rotation (it kept failing) or brought back (it answered)."""

    stage: str
    """"stt", "llm" or "tts"."""
    provider: str
    available: bool
    reason: str
    type: Literal[EventType.AVAILABILITY_CHANGED] = EventType.AVAILABILITY_CHANGED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class FunctionToolsExecutedEvent:
    """One step's tool calls ran; each has its answer (in the same order)."""

    function_calls: tuple[FunctionCall, ...]
    function_outputs: tuple[FunctionOutputItem, ...]
    type: Literal[EventType.FUNCTION_TOOLS_EXECUTED] = EventType.FUNCTION_TOOLS_EXECUTED
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class FunctionChainTooLongEvent:
    """The model kept calling tools past ``max_steps`` rounds: the reply said it could not finish."""

    max_steps: int
    type: Literal[EventType.FUNCTION_CHAIN_TOO_LONG] = EventType.FUNCTION_CHAIN_TOO_LONG
    created_at: float = field(default_factory=_now)


AgentEvent = (
    AgentStateChangedEvent
    | WakeWordDetectedEvent
    | UserStartedSpeakingEvent
    | UserStoppedSpeakingEvent
    | UserInputTranscribedEvent
    | ConversationItemAddedEvent
    | ConversationItemUpdatedEvent
    | SpeechCreatedEvent
    | SpeechPausedEvent
    | AgentFalseInterruptionEvent
    | MetricsCollectedEvent
    | ErrorEvent
    | AvailabilityChangedEvent
    | FunctionToolsExecutedEvent
    | FunctionChainTooLongEvent
    | PreemptiveDiscardedEvent
)
Callback = Callable[[Any], None]
F = TypeVar("F", bound=Callback)


class EventEmitter:
    """``on(name, callback)`` (or ``@on(name)``), ``off``, ``emit``; a failing callback is logged, not raised."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = {}

    def on(self, name: str, callback: F | None = None) -> Any:
        event = EventType(name)  # an unknown name fails here, not silently later
        if callback is None:

            def decorator(fn: F) -> F:
                self._callbacks.setdefault(event, []).append(fn)
                return fn

            return decorator
        self._callbacks.setdefault(event, []).append(callback)
        return callback

    def off(self, name: str, callback: Callback) -> None:
        callbacks = self._callbacks.get(EventType(name), [])
        if callback in callbacks:
            callbacks.remove(callback)

    def emit(self, event: AgentEvent) -> None:
        for callback in list(self._callbacks.get(event.type, [])):
            try:
                callback(event)
            except Exception:
                logger.exception("event callback failed", extra={"event": event.type.value})


def to_dict(event: AgentEvent) -> dict[str, Any]:
    """A JSON-ready view of an event (handles by id, messages and metrics as plain dicts)."""
    from appliance.agent.speech import SpeechHandle

    out: dict[str, Any] = {}
    for name, value in vars(event).items():
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, SpeechHandle):
            name, value = "speech_id", value.id
        elif isinstance(value, ChatMessage | FunctionCallItem | FunctionOutputItem):
            value = item_to_dict(value)
        elif isinstance(value, TurnMetrics):
            value = value.as_dict()
        elif (
            isinstance(value, tuple) and value and all(isinstance(v, FunctionCall | FunctionOutputItem) for v in value)
        ):
            value = [asdict(v) for v in value]
        elif isinstance(value, BaseException):
            value = str(value)
        out[name] = value
    return out
