"""``bench --providers`` runs the real clients against the loopback servers and the real local engines, and
reports every failure mode per provider (the figures themselves are the benchmark's, not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys

from appliance.bench.providers import FAULTS


def test_bench_providers_reports_each_failure_and_who_stood_in() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "bench", "--providers", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)["providers"]
    assert {stage: sorted(r) for stage, r in report.items()} == {
        "llm": ["local", "openai"],
        "stt": ["deepgram", "local", "openai"],
        "tts": ["elevenlabs", "local", "openai"],
    }
    for stage, providers in report.items():
        for name, figures in providers.items():
            if name == "local":
                continue
            assert set(figures["fallback"]) == {f.value for f in FAULTS}
            for fault, row in figures["fallback"].items():
                # a disconnect after the first token or audio keeps the reply with its provider, by design
                kept = fault == "disconnect" and stage != "stt"
                assert row["served_by"] == ({name: 1} if kept else {"local": 1}), (stage, name, fault)
            timeout = 1.5 if stage == "stt" else 1.0
            assert figures["fallback"]["hang_before_first"]["failed_try_p50"] >= timeout  # waited the attempt timeout
