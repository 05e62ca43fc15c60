"""The stage commands as a user runs them: real subprocesses, real models, real files."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from appliance.audio.resample import resample
from appliance.audio.wav import read_audio
from appliance.bench import DEMO_CLIP


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_transcribe_reads_any_wav_rate_and_prints_json(corpus: Path, tmp_path: Path) -> None:
    wav = tmp_path / "goforward_44k.wav"
    sf.write(wav, resample(read_audio(corpus / "goforward.raw"), 44100).data, 44100, subtype="PCM_16")
    proc = cli("transcribe", "--json", str(wav))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["text"].lower().startswith("go forward")
    assert row["latency"] > 0 and row["audio_ctx"] < 1500


def quiet_recording(path: Path, minutes: int, speech: dict[int, np.ndarray], seed: int, at: int = 0) -> Path:
    """``minutes`` of quiet room noise (SYNTHETIC), with ``speech[m]`` added ``at`` samples into minute ``m``."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for m in range(minutes):
            block = rng.normal(0, 30, 60 * 16000).astype(np.int16)
            if m in speech:
                block[at : at + speech[m].size] += speech[m]
            f.write(block)
    return path


def peak_rss_mb(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``appliance ARGS`` in a process of its own, and its peak resident memory in MB."""
    measured = (
        "import resource, subprocess, sys; p = subprocess.run([sys.executable, '-m', 'appliance', *sys.argv[1:]]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(p.returncode)"
    )
    proc = subprocess.run([sys.executable, "-c", measured, *args], capture_output=True, text=True, timeout=300)
    return proc, int(proc.stderr.strip().splitlines()[-1]) / 1024


def test_an_hour_long_recording_is_transcribed_utterance_by_utterance_in_bounded_memory(
    corpus: Path, tmp_path: Path
) -> None:
    """An hour of quiet room noise (SYNTHETIC) with the REAL "go forward ten meters" at 10 and 40 minutes."""
    speech = np.fromfile(corpus / "goforward.raw", dtype=np.int16)
    wav = quiet_recording(tmp_path / "hour.wav", 60, {10: speech, 40: speech}, seed=0, at=16000)
    proc, peak_mb = peak_rss_mb("transcribe", "--json", str(wav))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert [round(g["start"]) for g in row["segments"]] == [601, 2401]  # the silence heard as nothing
    assert all(g["text"].lower().startswith("go forward") for g in row["segments"])
    # the whole hour read at once would take 115 MB as int16 and 230 MB more as float: far from the models' size
    assert peak_mb < 450, peak_mb


def test_wake_finds_the_phrase_in_an_hour_of_quiet(tmp_path: Path) -> None:
    """An hour of quiet room noise with the SYNTHETIC demo clip ("Hey Jarvis. ...") 20 minutes in."""
    wav = quiet_recording(tmp_path / "hour.wav", 60, {20: read_audio(DEMO_CLIP).data}, seed=1)
    proc = cli("wake", "--json", str(wav), timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["wake_word"] for r in rows] == ["hey_jarvis"]
    assert 1200.5 < rows[0]["timestamp"] < 1203.0  # where the phrase ends, on the file's own clock


def test_converse_on_half_an_hour_reads_it_as_heard_in_the_memory_of_a_short_clip(tmp_path: Path) -> None:
    """Half an hour of quiet room noise (SYNTHETIC) with the SYNTHETIC demo clip ("Hey Jarvis. What is the
    capital of France?") 25 minutes in: answered, and the half hour costs no more memory than the clip alone."""
    wav = quiet_recording(tmp_path / "half-hour.wav", 30, {25: read_audio(DEMO_CLIP).data}, seed=2)
    short, short_mb = peak_rss_mb("converse", "--json", "--input", str(DEMO_CLIP), "--output", str(tmp_path / "a.wav"))
    assert short.returncode == 0, short.stderr
    long, long_mb = peak_rss_mb("converse", "--json", "--input", str(wav), "--output", str(tmp_path / "b.wav"))
    assert long.returncode == 0, long.stderr
    result = json.loads(long.stdout)
    assert "capital of france" in result["transcript"].lower() and "paris" in result["reply"].lower()
    # read whole, the half hour would be 58 MB as int16 and 115 MB more as float before the resampler's copy
    assert long_mb - short_mb < 40, (short_mb, long_mb)


def test_wake_prints_detections_with_times() -> None:
    proc = cli("wake", "--json", str(DEMO_CLIP))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["wake_word"] == "hey_jarvis" and 0.5 < row["timestamp"] < 3.0 and row["score"] >= 0.5


def test_say_writes_a_wav_at_the_requested_rate(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    proc = cli("say", "Hello there. How are you?", "-o", str(out), "--rate", "16000")
    assert proc.returncode == 0, proc.stderr
    data, rate = sf.read(out, dtype="int16")
    assert rate == 16000 and len(data) > 16000 and np.abs(data).max() > 3000


def test_chat_streams_a_reply() -> None:
    proc = cli("chat", "Say hello.", "--metrics")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "ttft" in proc.stderr


def test_converse_answers_the_bundled_clip(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    proc = cli("converse", "--input", str(DEMO_CLIP), "--output", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    turn = json.loads(proc.stdout)
    assert turn["wake_word"] == "hey_jarvis" and "capital" in turn["transcript"].lower() and turn["reply"]
    assert sf.info(out).duration > 0.3


def test_converse_reads_stdin_and_writes_the_reply_to_stdout() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "converse", "-i", "-", "-o", "-"],
        input=DEMO_CLIP.read_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"capital of France" in proc.stderr  # the report goes to stderr when stdout carries audio
    audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="int16")
    assert rate == 22050 and audio.size > 0.3 * rate


def test_converse_without_wake_word_says_so(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    clip = corpus / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"
    proc = cli("converse", "--input", str(clip), "--output", str(out))
    assert proc.returncode == 1
    assert "no wake word" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("plain text, not audio"), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros((0, 1)), 16000, subtype="PCM_16"), "no audio samples"),
    ],
    ids=["missing", "unsupported", "empty"],
)
def test_bad_audio_input_is_one_clear_line_and_exit_2(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "input.wav"
    make(path)
    for args in (["transcribe", str(path)], ["converse", "-i", str(path), "-o", str(tmp_path / "o.wav")]):
        proc = cli(*args)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
        assert "Traceback" not in proc.stderr


def test_a_model_that_loads_but_writes_garbage_is_reported_by_the_command_that_loads_it(
    models, corpus: Path, tmp_path: Path
) -> None:
    """Bytes gone bad under an unchanged size and mtime pass the stamp; the engine's run at load catches them."""
    from tests.models.corrupt import copy_verified, ggml_tensor, rot

    copy = copy_verified(models, tmp_path / "models", "whisper-tiny.en")
    path = copy.store.path(copy.spec("whisper-tiny.en"))
    rot(path, ggml_tensor(path, "encoder.blocks.2.mlp.2.weight"))
    proc = cli("--models-dir", str(copy.store.root), "transcribe", str(corpus / "goforward.raw"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model file ") and str(path) in lines[0], proc.stderr
    assert "appliance-cli models verify" in lines[0] and "appliance-cli models fetch" in lines[0]
    verify = cli("--models-dir", str(copy.store.root), "models", "verify", "--name", "whisper-tiny.en")
    assert verify.returncode == 1 and "corrupt" in verify.stdout  # the fix named finds the damage


def test_models_list_and_verify(tmp_path: Path) -> None:
    proc = cli("models", "verify", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and all(r["status"] == "ok" for r in rows)
    listing = cli("models", "list")
    assert "non-commercial" in listing.stdout and "whisper-tiny.en" in listing.stdout


def test_corrupted_model_is_reported_by_the_command_that_loads_it(models, corpus: Path, tmp_path: Path) -> None:
    import shutil

    spec = models.specs["whisper-tiny.en"]
    root = tmp_path / "models"
    (root / "stt").mkdir(parents=True)
    with models.path("whisper-tiny.en").open("rb") as src, (root / spec.file).open("wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(1_000_000)
    proc = cli("--models-dir", str(root), "transcribe", str(corpus / "goforward.raw"))
    assert proc.returncode == 2
    assert str(root / spec.file) in proc.stderr and "appliance-cli models fetch" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    verify = cli("--models-dir", str(root), "models", "verify", "--name", "whisper-tiny.en")
    assert verify.returncode == 1 and "corrupt" in verify.stdout
