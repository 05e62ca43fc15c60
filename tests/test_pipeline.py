"""The whole chain on recordings: a SYNTHETIC wake phrase, then REAL or synthetic speech."""

from appliance.audio.wav import read_audio
from appliance.bench import DEMO_CLIP, normalize_words
from appliance.pipeline import LocalChain
from tests.helpers import join, run, silence


def test_bundled_clip_is_answered_with_speech(jarvis, vad, stt, llm, tts) -> None:
    chain = LocalChain(jarvis, vad, stt, llm, tts)
    result = run(chain.run(read_audio(DEMO_CLIP)))
    assert result.wake is not None and result.wake.name == "hey_jarvis"
    assert "capital of france" in normalize_words(result.transcript)
    assert result.reply
    assert result.audio is not None and result.audio.seconds > 0.3 and result.audio.rms_dbfs() > -35
    assert result.eos_to_first_audio is not None and result.eos_to_first_audio > 0
    assert result.llm is not None and result.tts is not None and result.stt is not None
    assert [m.role.value for m in chain.chat_ctx.items] == ["system", "user", "assistant"]


def test_real_question_after_the_wake_word_is_transcribed(jarvis, vad, stt, llm, tts, synth, go_forward) -> None:
    clip = join(silence(0.5), synth("Hey, Jarvis.").data, silence(0.4), go_forward.data, silence(1.2))
    result = run(LocalChain(jarvis, vad, stt, llm, tts).run(clip))
    assert "go forward" in normalize_words(result.transcript)
    assert result.audio is not None and result.audio.seconds > 0.3


def test_speech_without_the_wake_word_gets_no_reply(jarvis, vad, stt, llm, tts, librivox) -> None:
    result = run(LocalChain(jarvis, vad, stt, llm, tts).run(librivox[0][0]))
    assert result.wake is None and result.transcript == "" and result.audio is None


def test_wake_word_then_silence_gets_no_reply(jarvis, vad, stt, llm, tts, synth) -> None:
    clip = join(silence(0.5), synth("Hey, Jarvis.").data, silence(3.0))
    result = run(LocalChain(jarvis, vad, stt, llm, tts).run(clip))
    assert result.wake is not None and result.transcript == "" and result.audio is None
