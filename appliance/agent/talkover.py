"""A reply the user talks over: the speaker pauses at once; the reply is cut if what they said was words, and
plays on if it was not (a cough, a laugh, the device's own echo let through)."""

from __future__ import annotations

import asyncio
import logging

from appliance.agent.listener import Listener, Utterance
from appliance.agent.options import SessionOptions
from appliance.agent.playout import CUT_TIMEOUT
from appliance.agent.speech import SpeechHandle
from appliance.agent.state import AgentState
from appliance.agent.transcription import Transcriber, Transcript
from appliance.agent.turns import MIN_TURN_AUDIO, confirms_interruption
from appliance.audio.io import AudioOutput
from appliance.vad.base import VADSettings

logger = logging.getLogger(__name__)


def pause_bound(vad: VADSettings, options: SessionOptions) -> float:
    """Seconds a reply stays paused at most: a talk-over ends by itself (the VAD bounds an utterance), then
    is transcribed (bounded too), and once more from the pause if that transcript was unsure."""
    return vad.max_speech_duration + 2 * options.transcription_timeout + 1.0


class TalkOver:
    """The reply paused by a talk-over, if any, and the decision on it."""

    def __init__(self, output: AudioOutput, transcriber: Transcriber) -> None:
        self._output, self._transcriber = output, transcriber
        self.reply: SpeechHandle | None = None
        """The paused reply (None: none is)."""
        self.at = 0
        """Stream position where the talk-over paused the reply: what follows was spoken to a quiet speaker."""
        self.resume_to = AgentState.SPEAKING
        """The state the reply goes back to if it plays on."""

    def pause(self, reply: SpeechHandle, state: AgentState, position: int) -> None:
        self._output.pause()
        self.reply, self.resume_to, self.at = reply, state, position

    def forget(self) -> None:
        """The paused reply is being stopped another way (the wake word, a deadline): nothing is resumed."""
        self.reply = None

    def ended(self, reply: SpeechHandle) -> None:
        """``reply`` ended by itself: the speaker is let go if it was the one paused."""
        self.resume(reply)

    def resume(self, reply: SpeechHandle) -> bool:
        """The speaker plays ``reply`` on; False if it is no longer the paused one."""
        if self.reply is not reply:
            return False
        self.reply = None
        self._output.resume()
        return True

    async def cut(self, reply: SpeechHandle) -> None:
        """The talk-over was words: ``reply`` is cut before the new turn is answered."""
        self.reply = None
        reply.force_interrupt()
        try:
            await asyncio.wait_for(reply.wait_for_playout(), CUT_TIMEOUT)
        except TimeoutError:
            # the new turn goes ahead: it queues behind the cut reply, which the speaker no longer plays
            logger.warning("interrupted reply slow to let go", extra={"speech_id": reply.id, "seconds": CUT_TIMEOUT})

    async def words(
        self, utterance: Utterance, transcript: Transcript | None, listener: Listener | None
    ) -> Transcript | None:
        """What the talk-over said if it was clearly words (None: it was not). An unsure transcript is made
        again from the pause: the talk-over's start was spoken under the reply's echo, the canceller damps a
        voice's first syllables over it and the gate lets through only what is louder than the echo, so whisper
        can be unsure of the whole while the words after the pause, to a quiet speaker, are clear."""
        if transcript is not None and confirms_interruption(transcript.text, transcript.confidence):
            return transcript
        audio = utterance.after(self.at)
        end = utterance.start + utterance.audio.samples_per_channel
        if audio.seconds >= MIN_TURN_AUDIO and listener is not None and listener.has_speech(self.at, end):
            logger.info(
                "talk-over unsure: transcribed again from the pause", extra={"seconds": round(audio.seconds, 2)}
            )
            again = await self._transcriber.final((self.at, audio.samples_per_channel), audio)
            if again is not None and confirms_interruption(again.text, again.confidence):
                return again
        text, confidence = (transcript.text, transcript.confidence) if transcript is not None else ("", 0.0)
        # why, without the words: a cough, or words whisper was unsure of
        logger.info("talk-over not words", extra={"words": len(text.split()), "confidence": round(confidence, 2)})
        return None
