"""Turn-taking settings of a session (frozen, validated once)."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import ConfigError
from appliance.llm.chat import ChatContext, ChatItem, ChatMessage, Role

CUT_NOTE = 'You began your reply with "{heard}" and the user interrupted you there: they did not hear the rest.'
"""What the model reads in place of a reply of its own that the user cut short. Kept as its own words, the
heard part ("Once upon a time,") was taken for a whole answer, and the next story came back as those four
words; a marker appended to the words was copied into the next story. Measured with the default model on a
story request after a story cut at its first clause: the next story came back as the four words in 4 of 13
tries with the words alone, 7 of 13 with a note after them, 0 of 16 with this note in their place."""


@dataclass(frozen=True)
class SessionOptions:
    allow_interruptions: bool = True
    """The user may talk over the agent to cut its reply."""
    min_interruption_duration: float = 0.3
    """Seconds of user speech over the agent before the speaker goes quiet (paused: a talk-over that was not
    words resumes the reply, so a cough costs a short gap). On an open speaker with echo cancellation (bench
    --echo, 20 talk-overs of stories), the speaker was quiet 0.52 s (p50) after the talk-over began at 0.3 s,
    and 0.64 s at 0.4 s; at both, 10 stories nobody talked over played through without a pause."""
    min_endpointing_delay: float = 0.5
    """Seconds of silence that end the user's turn without a turn detector, or when it fails."""
    complete_endpointing_delay: float = 0.25
    """With a turn detector: seconds of silence that end an utterance it finds complete."""
    max_endpointing_delay: float = 1.5
    """With a turn detector: seconds of silence that end one it finds unfinished (a pause mid-sentence)."""
    preemptive_generation: bool = True
    """Start the reply on the early transcript during the endpointing silence; it plays once the turn ends
    (and is thrown away, stopped at the engines, if the user goes on)."""
    require_wake_word: bool = True
    """Start each conversation with the wake word (False: every utterance is a turn)."""
    listening_timeout: float = 8.0
    """Seconds after the wake word for the user to start talking before going back to waiting."""
    follow_up_window: float = 5.0
    """Seconds after a reply in which the user may answer without the wake word."""
    transcription_timeout: float = 20.0
    """Seconds the STT may take on one utterance before the turn is dropped (and reported)."""
    thinking_timeout: float = 20.0
    """Seconds from the end of the user's turn to the first reply audio before the turn is dropped."""
    max_speaking_time: float = 120.0
    """Seconds one reply may play."""
    wake_gate_threshold: float = 0.15
    """VAD probability that switches the wake-word model on (it sleeps through silence to save CPU)."""
    wake_gate_hold: float = 2.5
    """Seconds the wake-word model keeps running after the last sound above the gate."""
    wake_pre_roll: float = 2.0
    """Seconds of audio before the gate opened that the wake-word model is fed, so no syllable is lost."""
    speculative_transcription: bool = True
    """Transcribe during the endpointing silence; the result is kept if the user stays silent."""
    earcons: bool = True
    """Short tones on wake, on listening timeout and on a failed turn."""
    max_history: int = 200
    """Items of conversation (messages, tool calls) kept in the LLM's context at most; the instructions
    always stay. ``history_tokens`` is what usually decides."""
    history_tokens: int = 1024
    """About how many tokens of conversation (with the instructions) the LLM is given. Older turns go in
    blocks, so the model's cached prompt survives most turns."""
    max_fnc_steps: int = 5
    """Rounds of tool calls one reply may take before it says it could not finish."""
    apology: str = "Sorry, I can't answer right now. Please try again in a moment."
    """Said when a turn fails before any reply was heard (every provider of a stage failed). Synthesized at
    start with the voice that needs no network; empty: the error tone instead."""

    def budgeted(self, chat_ctx: ChatContext) -> ChatContext:
        """A copy of the conversation as the model is given it: within ``max_history`` and ``history_tokens``,
        and each reply the user cut told as a note (:data:`CUT_NOTE`) instead of as the model's own words."""
        ctx = chat_ctx.copy()
        ctx.truncate(self.max_history, max_tokens=self.history_tokens)
        items: list[ChatItem] = []
        for item in ctx.items:
            if isinstance(item, ChatMessage) and item.role is Role.ASSISTANT and item.interrupted and item.content:
                note = CUT_NOTE.format(heard=item.content.strip())
                item = ChatMessage(Role.SYSTEM, note, id=f"{item.id}-cut", created_at=item.created_at)
            items.append(item)
        ctx.items = items
        return ctx

    def __post_init__(self) -> None:
        positive = (
            "min_endpointing_delay",
            "listening_timeout",
            "follow_up_window",
            "transcription_timeout",
            "thinking_timeout",
            "max_speaking_time",
            "wake_gate_hold",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"agent.{name} = {getattr(self, name)} must be more than 0 seconds")
        if not 0.2 <= self.complete_endpointing_delay <= self.max_endpointing_delay <= 10.0:
            complete, longest = self.complete_endpointing_delay, self.max_endpointing_delay
            raise ConfigError(
                f"agent.complete_endpointing_delay = {complete} and agent.max_endpointing_delay = {longest} are out "
                "of range; use 0.2 <= complete <= max <= 10 seconds"
            )
        if not 0.1 <= self.min_interruption_duration <= 5.0:
            value = self.min_interruption_duration
            raise ConfigError(f"agent.min_interruption_duration = {value} is out of range; use 0.1 to 5 seconds")
        if not 0.0 < self.wake_gate_threshold < 1.0:
            value = self.wake_gate_threshold
            raise ConfigError(f"agent.wake_gate_threshold = {value} is out of range; use a value between 0 and 1")
        if self.wake_pre_roll < 1.5:
            raise ConfigError(
                f"agent.wake_pre_roll = {self.wake_pre_roll} is too short; use at least 1.5 s (the wake model's window)"
            )
        if not 1 <= self.max_fnc_steps <= 20:
            raise ConfigError(f"agent.max_fnc_steps = {self.max_fnc_steps} is out of range; use 1 to 20")
        if self.max_history < 1:
            raise ConfigError(f"agent.max_history = {self.max_history} must be at least 1")
        if not 128 <= self.history_tokens <= 100_000:
            value = self.history_tokens
            raise ConfigError(f"agent.history_tokens = {value} is out of range; use 128 to 100000")
