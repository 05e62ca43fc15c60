"""Streaming recognition of REAL speech: VAD cuts, whisper.cpp transcribes each utterance."""

from appliance.bench import normalize_words
from appliance.stt.base import SpeechEventType
from appliance.stt.stream_adapter import SpeechStream
from tests.helpers import join, run, silence


def test_two_utterances_give_two_final_transcripts_in_order(stt, vad, go_forward, go_somewhere) -> None:
    clip = join(silence(0.8), go_forward.data, silence(1.2), go_somewhere.data, silence(1.0))

    async def go() -> list:
        stream = SpeechStream(stt, vad.stream())
        for block in clip.split(320):
            stream.push_frame(block)
        stream.end_input()
        events = [e async for e in stream]
        await stream.aclose()
        return events

    events = run(go())
    kinds = [e.type for e in events]
    assert (
        kinds == [SpeechEventType.START_OF_SPEECH, SpeechEventType.END_OF_SPEECH, SpeechEventType.FINAL_TRANSCRIPT] * 2
    )
    finals = [normalize_words(e.alternatives[0].text) for e in events if e.type is SpeechEventType.FINAL_TRANSCRIPT]
    assert finals[0].startswith("go forward")
    assert "somewhere" in finals[1]
