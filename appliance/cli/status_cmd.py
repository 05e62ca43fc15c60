"""``appliance-cli status``: what the running appliance is doing, read from its status socket."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from appliance.cli.common import config_from
from appliance.errors import ApplianceError
from appliance.service.status import read_status, socket_candidates


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="state, uptime and latency of the running appliance")
    p.add_argument("--socket", default=None, help="the daemon's status socket (default: from the config)")
    p.add_argument("--json", action="store_true", help="print the raw status document")
    p.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    candidates = [Path(args.socket)] if args.socket else socket_candidates(config_from(args))
    failures: list[tuple[bool, ApplianceError]] = []
    for path in candidates:
        try:
            doc = read_status(path)
        except ApplianceError as exc:
            failures.append((path.exists(), exc))
            continue
        print(json.dumps(doc, indent=2) if args.json else render(doc))
        return 0
    raise max(failures, key=lambda f: f[0])[1]  # a socket that is there but refused says more than a missing one


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    return " ".join([*parts, f"{minutes}m", f"{s}s"])


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def render(doc: dict[str, Any]) -> str:
    lines = [
        f"appliance: {doc['state']}{' (stopping)' if doc.get('stopping') else ''}, "
        f"up {_duration(doc['uptime'])}, pid {doc['pid']}",
        f"config: {doc.get('config') or 'built-in defaults'}",
    ]
    mic, speaker, dog = doc["microphone"], doc["speaker"], doc["watchdog"]
    lines.append(
        f"microphone: {mic['device']}{' (reconnecting)' if mic['recovering'] else ''}, "
        f"{mic['dropped_blocks']} blocks dropped, {mic.get('xruns', 0)} xruns; "
        f"speaker: {speaker['device']}, {speaker.get('xruns', 0)} xruns"
    )
    if dog["enabled"]:
        lines.append(f"watchdog: {'STALLED: ' + dog['problem'] if dog['problem'] else 'fed'} ({dog['pings']} pings)")
    else:
        lines.append("watchdog: off (not under systemd)")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(doc["errors"].items())) or "none"
    lines.append(
        f"turns: {doc['turns']} ({doc['interruptions']} interrupted, {doc['false_interruptions']} false "
        f"interruptions); wake words: {doc['wake_detections']}; errors: {errors}"
    )
    last = doc.get("last_turn")
    if last:
        ago = time.time() - doc["last_turn_at"] if doc.get("last_turn_at") else None
        lines.append(
            f"last turn{f' ({_duration(ago)} ago)' if ago is not None else ''}: "
            f"end of speech -> first audio {_seconds(last['eos_to_first_audio'])} "
            f"(endpointing {_seconds(last['end_of_utterance_delay'])}, stt {_seconds(last['stt_latency'])}"
            f"{' early' if last['stt_speculative'] else ''}, llm first token {_seconds(last['llm_ttft'])}, "
            f"tts first audio {_seconds(last['tts_ttfb'])}); played {last['played']:.1f} s"
            f"{', interrupted' if last['interrupted'] else ''}"
        )
    names = {
        "eos_to_first_audio": "end of speech -> first audio",
        "stt_latency": "stt",
        "llm_ttft": "llm first token",
        "tts_ttfb": "tts first audio",
    }
    for key, label in names.items():
        stat = doc["latency"].get(key, {})
        if stat.get("n"):
            lines.append(f"  {label}: p50 {_seconds(stat['p50'])}, p95 {_seconds(stat['p95'])} over {stat['n']} turns")
    for stage, info in (doc.get("providers") or {}).items():
        if "available" not in info:
            continue  # the local engine alone
        down = [p for p, up in info["available"].items() if not up]
        counts = ", ".join(f"{k} {n}" for k, n in info.get("requests", {}).items())
        skipping = f" (skipping {', '.join(down)})" if down else ""
        lines.append(f"{stage}: {info['chain']}{skipping}; requests: {counts or 'none'}")
    record = doc.get("record") or {}
    if record.get("failed_writes") or record.get("problem"):
        what = record.get("problem") or f"{record['failed_writes']} items not written ({record.get('last_error')})"
        lines.append(f"conversation record: {what}; check the state directory (full or read-only?)")
    sent = doc.get("sent_off_device")
    if sent is not None:
        parts = [f"{k} {v['bytes']} bytes in {v['requests']} requests" for k, v in sent.items()]
        lines.append(f"sent off the device: {', '.join(parts) or 'nothing'}")
    if doc.get("metrics"):
        lines.append(f"metrics: {doc['metrics']}")
    return "\n".join(lines)
