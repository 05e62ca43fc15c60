"""The checks that read the machine, fed what a Raspberry Pi or a PC would show."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.doctor import Status, engines
from appliance.doctor.service import status_socket_check
from appliance.doctor.system import cpu_check, memory_check, temperature_check, throttling_check
from appliance.engines import EngineChoice
from appliance.errors import APITimeoutError
from tests.doctor.status_socket import answering

PI5_CPUINFO = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"  # noqa: E501
PI4_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
OLD_PC_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n"


def test_a_pi_5_has_every_instruction_the_engines_use() -> None:
    result = cpu_check(PI5_CPUINFO, "aarch64")
    assert result.status is Status.OK and "asimd dotprod" in result.detail


def test_a_cpu_without_dot_product_or_avx2_warns_and_names_what_is_missing() -> None:
    pi4 = cpu_check(PI4_CPUINFO, "aarch64")
    assert pi4.status is Status.WARN and "missing dotprod" in pi4.detail
    old_pc = cpu_check(OLD_PC_CPUINFO, "x86_64")
    assert old_pc.status is Status.WARN and "missing avx2 fma f16c" in old_pc.detail


def test_memory_below_what_the_models_need() -> None:
    meminfo = "MemTotal:  4000000 kB\nMemFree:  100000 kB\nMemAvailable:  500000 kB\n"
    assert memory_check(300_000_000, meminfo).status is Status.OK
    assert memory_check(700_000_000, meminfo).status is Status.WARN  # available, not total, is short
    too_small = memory_check(5_000_000_000, meminfo)
    assert too_small.status is Status.FAIL and too_small.fix


def zone(root: Path, n: int, kind: str, millidegrees: int) -> None:
    (root / f"thermal_zone{n}").mkdir(parents=True)
    (root / f"thermal_zone{n}" / "type").write_text(kind + "\n")
    (root / f"thermal_zone{n}" / "temp").write_text(f"{millidegrees}\n")


def test_the_hottest_zone_is_reported_and_warns_near_throttling(tmp_path: Path) -> None:
    zone(tmp_path, 0, "cpu-thermal", 52_300)
    assert temperature_check(tmp_path).detail == "52.3 °C (cpu-thermal)"
    zone(tmp_path, 1, "gpu-thermal", 83_000)
    hot = temperature_check(tmp_path)
    assert hot.status is Status.WARN and "83.0 °C (gpu-thermal)" in hot.detail


def test_no_thermal_zones_is_a_skip(tmp_path: Path) -> None:
    assert temperature_check(tmp_path).status is Status.SKIP


def test_throttling_now_fails_and_since_boot_warns() -> None:
    now = throttling_check(0x50005)
    assert now.status is Status.FAIL and "under-voltage" in now.detail and "throttled" in now.detail
    before = throttling_check(0x50000)
    assert before.status is Status.WARN and before.detail.startswith("since boot: under-voltage")
    assert throttling_check(0).status is Status.OK


@pytest.fixture
def status_server(tmp_path: Path) -> Iterator[Path]:
    with answering(tmp_path / "status.sock", {"pid": 42, "state": "waiting_for_wake"}) as path:
        yield path


def test_the_status_socket_answers_with_the_daemons_state(status_server: Path, tmp_path: Path) -> None:
    result = status_socket_check([tmp_path / "elsewhere.sock", status_server])
    assert result.status is Status.OK and "daemon 42 is waiting_for_wake" in result.detail


def test_no_status_socket_is_a_skip(tmp_path: Path) -> None:
    assert status_socket_check([tmp_path / "status.sock"]).status is Status.SKIP


def _timing_out(engine: object) -> tuple[str, bool]:
    raise APITimeoutError("the LLM produced nothing for 10 s")


def test_a_check_that_times_out_on_a_starved_machine_says_so_and_only_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []

    class Engine:
        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(os, "getloadavg", lambda: (4.0 * (os.cpu_count() or 1), 0.0, 0.0))
    assert engines.load_factor() == pytest.approx(4.0)
    busy = engines._load_and_run("engine.llm", Engine, _timing_out, "appliance-cli")
    assert busy.status is Status.WARN and "the machine was busy (load" in busy.detail and closed
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    idle = engines._load_and_run("engine.llm", Engine, _timing_out, "appliance-cli")
    assert idle.status is Status.FAIL and "busy" not in idle.detail


def test_the_llm_checks_time_bounds_stretch_with_the_load() -> None:
    choice = engines.stretched(EngineChoice(), 3.0)
    assert choice.llama.first_token_timeout == pytest.approx(3 * EngineChoice().llama.first_token_timeout)
    assert engines.stretched(EngineChoice(), 1000.0).llama.first_token_timeout == 300.0
