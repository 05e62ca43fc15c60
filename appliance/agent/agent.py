"""Who the assistant is: its instructions, its tools and its hooks, held by the session. An ``AgentTask`` is an
agent for one job (a kitchen timer, the lights) that the conversation is handed to and back from."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence

from appliance.agent.speakable import speakable_text
from appliance.agent.tools import FunctionTool, find_tools
from appliance.audio.frame import AudioFrame
from appliance.llm.base import LLM, ChatChunk, ChatContext, ChatMessage, ToolChoice, ToolSpec
from appliance.stt.base import STT, SpeechEvent
from appliance.tts.base import TTS, SynthesizedAudio
from appliance.vad.base import VAD

HOOK_TIMEOUT = 5.0
"""Seconds a hook (``on_enter``, ``on_exit``, ``on_end_of_turn``) may take."""


class StopResponse(Exception):
    """Raised by ``on_end_of_turn``: the user's turn gets no reply."""


DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant running on a small device. "
    "Answer in one or two short, plain sentences that sound natural when spoken."
)


class Agent:
    """The assistant's instructions, its tools (``tools=`` and the ``@function_tool`` methods of a subclass),
    and the conversation it starts from (a restored one, say)."""

    def __init__(
        self,
        instructions: str = DEFAULT_INSTRUCTIONS,
        *,
        chat_ctx: ChatContext | None = None,
        tools: Sequence[FunctionTool] = (),
        stt: STT | None = None,
        llm: LLM | None = None,
        tts: TTS | None = None,
        vad: VAD | None = None,
    ) -> None:
        """``stt``, ``llm``, ``tts``, ``vad``: this agent's own engines while it is active (None: the session's;
        a streaming STT listens with the session's own)."""
        self.instructions = instructions
        self.chat_ctx = chat_ctx or ChatContext()
        self.stt, self.llm, self.tts, self.vad = stt, llm, tts, vad
        self.tools = [*tools, *find_tools(self)]
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {sorted(n for n in names if names.count(n) > 1)[0]!r}")

    @property
    def name(self) -> str:
        return type(self).__name__

    async def on_enter(self) -> None:
        """The agent became active. If this raises (or passes ``HOOK_TIMEOUT``), the handover is refused and
        the previous agent stays."""

    async def on_exit(self) -> None:
        """The agent is being left (a failure is logged; the handover goes on)."""

    async def on_end_of_turn(self, chat_ctx: ChatContext, new_message: ChatMessage) -> None:
        """The user finished speaking, before the reply: edit ``chat_ctx`` (this reply's context) or raise
        ``StopResponse`` for no reply. A failure is logged and the reply goes ahead."""

    def llm_node(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec], llm: LLM) -> AsyncIterator[ChatChunk]:
        """The model's answer to one request of a reply, chunk by chunk (override to change what is asked or
        what comes back; closing the iterator must stop the request). The default asks ``llm``."""
        return ask(llm, chat_ctx, tools)

    def tools_before_words(self, tools: Sequence[ToolSpec]) -> Sequence[ToolSpec]:
        """Which of ``tools`` a turn's first request offers, as far as is known before the user's words are:
        what the model reads ahead while the user speaks (``LLM.prefill``). Override with ``llm_node`` when it
        chooses tools by the words; the default offers them all."""
        return tools

    async def stt_node(self, audio: AudioFrame, stt: STT) -> SpeechEvent:
        """The transcript of one utterance (override to change what the agent hears). The default asks
        ``stt``: this agent's own, else the session's."""
        return await stt.recognize(audio)

    def tts_node(self, audio: AsyncIterable[SynthesizedAudio]) -> AsyncIterator[SynthesizedAudio]:
        """A reply's synthesized audio on its way to the speaker (override to change or replace it). The
        default passes it on."""
        return _passed_on(audio)

    def transcription_node(self, text: AsyncIterable[str]) -> AsyncIterator[str]:
        """The words of one model step on their way to the TTS (and to the conversation as what was said):
        override to change what is spoken. The default takes out what is not read aloud (markdown, list
        markers, emoji: ``speakable.py``)."""
        return speakable_text(text)

    def __repr__(self) -> str:
        return f"{self.name}(instructions={self.instructions[:40]!r}...)"


async def _passed_on(audio: AsyncIterable[SynthesizedAudio]) -> AsyncIterator[SynthesizedAudio]:
    async for piece in audio:
        yield piece


async def ask(
    llm: LLM, chat_ctx: ChatContext, tools: Sequence[ToolSpec], tool_choice: ToolChoice = "auto"
) -> AsyncIterator[ChatChunk]:
    """``llm``'s reply as chunks; leaving the loop (or closing the iterator) stops it at the engine."""
    choice: dict[str, ToolChoice] = {"tool_choice": "required"} if tool_choice == "required" else {}
    stream = llm.chat(chat_ctx, tools=tools, **choice)
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await stream.aclose()


class AgentTask(Agent):
    """An agent for one job: its own instructions, tools and engines; a tool of another agent returns it to
    hand the conversation over, and one of its tools returns the other agent to hand it back."""
