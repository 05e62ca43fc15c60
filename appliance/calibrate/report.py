"""What calibration tells the user: each value's old -> new and why, the false triggers, the warnings."""

from __future__ import annotations

from appliance.calibrate.flow import Result
from appliance.calibrate.thresholds import Choice


def describe_choice(choice: Choice) -> str:
    change = "unchanged" if round(choice.old, 2) == choice.new else f"{choice.old:.2f} -> {choice.new:.2f}"
    if change == "unchanged":
        return f"{choice.key} = {choice.new:.2f} (unchanged): {choice.reason}"
    return f"{choice.key} {change}: {choice.reason}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def report_lines(result: Result) -> list[str]:
    lines = [describe_choice(c) for c in result.choices]
    (starts_old, speech_old), (starts_new, speech_new) = result.false_speech
    wakes_old, wakes_new = result.false_wakes
    new, old = _count(starts_new, "utterance"), _count(starts_old, "utterance")
    lines.append(
        f"false triggers in {result.room.seconds:g} s of room sound: the VAD hears {speech_new:.1f} s of speech"
        f" in {new} (old threshold: {speech_old:.1f} s in {old}); {_count(wakes_new, 'wake word')}"
        f" (old threshold: {wakes_old})"
    )
    lines += [f"warning: {w}" for w in result.warnings]
    return lines
