"""The machine: CPU features the engines rely on, memory, temperature, and Raspberry Pi throttling."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from appliance.doctor.result import CheckResult, Status

SIMD = {
    "x86_64": ("avx2", "fma", "f16c"),
    "aarch64": ("asimd", "asimddp"),
    "armv7l": ("neon",),
}
"""Instructions llama.cpp and whisper.cpp (built portable) and onnxruntime take their fast paths with."""
SIMD_NAMES = {"asimddp": "dotprod"}
HOT_CELSIUS = 80.0
"""A Raspberry Pi starts capping its clock at 80 °C and throttles hard at 85 °C."""
THROTTLE_BITS = {0: "under-voltage", 1: "frequency capped", 2: "throttled", 3: "soft temperature limit"}
"""``vcgencmd get_throttled``: these bits for now; the same shifted by 16 for "since boot"."""
FIRMWARE_THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")


def cpu_check(cpuinfo: str | None = None, machine: str | None = None) -> CheckResult:
    machine = machine or platform.machine()
    machine = {"arm64": "aarch64", "AMD64": "x86_64"}.get(machine, machine)
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    cores = os.cpu_count() or 1
    wanted = SIMD.get(machine)
    if wanted is None:
        return CheckResult("system.cpu", Status.SKIP, f"{machine}, {cores} cores: no known SIMD needs")
    if not flags:
        return CheckResult("system.cpu", Status.SKIP, f"{machine}, {cores} cores: CPU features not exposed")
    have = [SIMD_NAMES.get(f, f) for f in wanted if f in flags]
    missing = [SIMD_NAMES.get(f, f) for f in wanted if f not in flags]
    detail = f"{machine}, {cores} cores: {' '.join(have) or 'no SIMD'}"
    if missing:
        return CheckResult(
            "system.cpu",
            Status.WARN,
            f"{detail}; missing {' '.join(missing)}: speech recognition and the LLM run slower",
            "use a CPU with these instructions (Raspberry Pi 5 has them), or a smaller model",
        )
    return CheckResult("system.cpu", Status.OK, detail)


def _meminfo(text: str) -> dict[str, int]:
    """Bytes per field of /proc/meminfo."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def memory_check(need: int, meminfo: str | None = None) -> CheckResult:
    """``need``: bytes the configured models take once loaded, with the process around them."""
    if meminfo is None:
        try:
            meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
        except OSError:
            return CheckResult("system.memory", Status.SKIP, "not exposed (no /proc/meminfo)")
    values = _meminfo(meminfo)
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    if total is None or available is None:
        return CheckResult("system.memory", Status.SKIP, "not exposed (no MemAvailable in /proc/meminfo)")
    detail = (
        f"{available / 1e9:.1f} GB available of {total / 1e9:.1f} GB; the configured models need ~{need / 1e9:.2f} GB"
    )
    if total < need:
        fix = "use the small models (`appliance-cli models fetch --profile small` says how), or add swap (slow)"
        return CheckResult("system.memory", Status.FAIL, detail, fix)
    if available < need:
        return CheckResult(
            "system.memory",
            Status.WARN,
            detail,
            "stop other programs (a running appliance service already holds its share)",
        )
    return CheckResult("system.memory", Status.OK, detail)


def temperature_check(root: Path = Path("/sys/class/thermal")) -> CheckResult:
    readings: list[tuple[float, str]] = []
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            celsius = int((zone / "temp").read_text().strip()) / 1000
            kind = (zone / "type").read_text().strip() if (zone / "type").exists() else zone.name
        except (OSError, ValueError):
            continue
        readings.append((celsius, kind))
    if not readings:
        return CheckResult("system.temperature", Status.SKIP, "not exposed (no thermal zones)")
    celsius, kind = max(readings)
    detail = f"{celsius:.1f} °C ({kind})"
    if celsius >= HOT_CELSIUS:
        return CheckResult(
            "system.temperature", Status.WARN, f"{detail}: the CPU slows down to cool", "add a heatsink or a fan"
        )
    return CheckResult("system.temperature", Status.OK, detail)


def _throttled_value() -> int | None:
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        try:
            out = subprocess.run(
                [vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=5, check=True
            ).stdout
            return int(out.strip().partition("=")[2], 16)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass  # fall through to the firmware's sysfs file
    try:
        return int(FIRMWARE_THROTTLED.read_text().strip(), 16)
    except (OSError, ValueError):
        return None


def throttling_check(value: int | None = None) -> CheckResult:
    value = _throttled_value() if value is None else value
    if value is None:
        return CheckResult("system.throttling", Status.SKIP, "not exposed (no vcgencmd: not a Raspberry Pi)")
    now = [name for bit, name in THROTTLE_BITS.items() if value & (1 << bit)]
    before = [name for bit, name in THROTTLE_BITS.items() if value & (1 << (bit + 16))]
    fix = "use the recommended power supply (Raspberry Pi 5: 5 V, 5 A) and cooling"
    if now:
        return CheckResult("system.throttling", Status.FAIL, f"now: {', '.join(now)} (0x{value:x})", fix)
    if before:
        return CheckResult("system.throttling", Status.WARN, f"since boot: {', '.join(before)} (0x{value:x})", fix)
    return CheckResult("system.throttling", Status.OK, "never throttled since boot")
