"""The soak bench's report, and a short real run of it through the private sound server (three turns of the
real daemon: SYNTHETIC wake phrase, real and SYNTHETIC questions)."""

from __future__ import annotations

import pytest

from appliance.bench.soak import _report, run_soak_bench
from appliance.engines import EngineChoice


def test_the_report_gives_memory_per_block_and_its_slope_at_the_end() -> None:
    rss = [500.0 + 0.5 * i for i in range(120)]  # growing by 0.5 MiB a turn
    latency = [0.8] * 119 + [None]
    report = _report(480.0, rss, latency, missed=1, seconds=600.0)
    assert report["turns"] == 120 and report["turns_missed"] == 1
    assert report["rss_mb_per_100_turns_over_the_last_third"] == pytest.approx(50.0)
    assert [b["turns"] for b in report["blocks"]] == ["1-50", "51-100", "101-120"]
    assert report["blocks"][2]["rss_mb_at_end"] == pytest.approx(559.5)
    assert report["blocks"][0]["eos_to_first_audio_p50"] == pytest.approx(0.8)


def test_a_short_soak_of_the_real_daemon_times_every_turn(models, corpus) -> None:  # type: ignore[no-untyped-def]
    tts = models.tts(EngineChoice())
    try:
        report = run_soak_bench(corpus, tts, turns=3)
    finally:
        tts.close()
    assert report["turns"] == 3 and report["turns_missed"] == 0, report
    assert report["rss_mb_at_ready"] > 100 and report["rss_mb_at_end"] >= report["rss_mb_at_ready"] * 0.8
    assert report["blocks"][0]["eos_to_first_audio_p50"] is not None
