"""The agent on recordings (file input, recorded output): a SYNTHETIC wake phrase, then REAL or synthetic speech."""

from appliance.audio.wav import read_audio
from appliance.bench import DEMO_CLIP, normalize_words
from appliance.pipeline import converse
from tests.helpers import join, run, silence


def test_bundled_clip_is_answered_with_speech(jarvis, vad, stt, llm, tts) -> None:
    result = run(converse(wake=jarvis, vad=vad, stt=stt, llm=llm, tts=tts, audio=read_audio(DEMO_CLIP)))
    assert result.wake_word == "hey_jarvis"
    assert "capital of france" in normalize_words(result.transcript)
    assert result.reply
    assert result.audio is not None and result.audio.seconds > 0.3 and result.audio.rms_dbfs() > -35
    m = result.metrics
    assert m is not None and m.llm_ttft is not None and m.tts_ttfb is not None and m.stt_latency is not None
    assert result.endpoint_to_first_audio is not None and result.endpoint_to_first_audio > 0
    assert [m.role.value for m in result.history] == ["system", "user", "assistant"]


def test_real_question_after_the_wake_word_is_transcribed(jarvis, vad, stt, llm, tts, synth, go_forward) -> None:
    clip = join(silence(0.5), synth("Hey, Jarvis.").data, silence(0.4), go_forward.data, silence(1.2))
    result = run(converse(wake=jarvis, vad=vad, stt=stt, llm=llm, tts=tts, audio=clip))
    assert "go forward" in normalize_words(result.transcript)
    assert result.audio is not None and result.audio.seconds > 0.3


def test_wake_word_and_question_in_one_breath(jarvis, vad, stt, llm, tts, synth, go_forward) -> None:
    # no pause between the wake phrase and the question: the question is still cut from the same utterance
    clip = join(silence(0.5), synth("Hey, Jarvis.").data[:-1600], go_forward.data, silence(1.2))
    result = run(converse(wake=jarvis, vad=vad, stt=stt, llm=llm, tts=tts, audio=clip))
    words = normalize_words(result.transcript)
    assert "go forward" in words and "jarvis" not in words


def test_speech_without_the_wake_word_gets_no_reply(jarvis, vad, stt, llm, tts, librivox) -> None:
    result = run(converse(wake=jarvis, vad=vad, stt=stt, llm=llm, tts=tts, audio=librivox[0][0]))
    assert result.wake_word is None and result.transcript == "" and result.audio is None


def test_wake_word_then_silence_gets_no_reply(jarvis, vad, stt, llm, tts, synth) -> None:
    clip = join(silence(0.5), synth("Hey, Jarvis.").data, silence(3.0))
    result = run(converse(wake=jarvis, vad=vad, stt=stt, llm=llm, tts=tts, audio=clip))
    assert result.wake_word is not None and result.transcript == "" and result.audio is None
