"""The watchdog's pings, received on a real NOTIFY_SOCKET datagram socket (the sd_notify protocol)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput
from appliance.service.notify import Notifier, watchdog_interval
from appliance.service.watchdog import HeartbeatInput, Watchdog, audio_path_check


class NotifySocket:
    """What systemd does: a bound datagram socket; every message is kept with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def pings(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [t for t, m in self.messages if m == "WATCHDOG=1" and since <= t <= until]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    server = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(server.path))
    yield server
    server.close()


class Tap(AudioInput):
    """Frames every 20 ms while ``flowing`` is set; a hung capture when it is cleared."""

    def __init__(self) -> None:
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        while True:
            await self.flowing.wait()
            await asyncio.sleep(0.02)
            yield AudioFrame(np.zeros(SAMPLE_RATE // 50, np.int16), SAMPLE_RATE)

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()


async def _read_all(heartbeat: HeartbeatInput) -> None:
    async for _ in heartbeat:
        pass


def test_pings_stop_when_capture_hangs_and_resume_when_it_flows(notify: NotifySocket) -> None:
    async def main() -> tuple[float, float, float]:
        tap = Tap()
        heartbeat = HeartbeatInput(tap)
        dog = Watchdog(Notifier(), 0.6, audio_path_check(heartbeat, lambda: None, stall=0.5, device_grace=60))
        reader = asyncio.create_task(_read_all(heartbeat))
        pinger = asyncio.create_task(dog.run())
        await asyncio.sleep(1.0)
        hung = time.monotonic()
        tap.flowing.clear()
        await asyncio.sleep(2.0)
        back = time.monotonic()
        tap.flowing.set()
        await asyncio.sleep(1.0)
        assert dog.problem is None
        for task in (reader, pinger):
            task.cancel()
        await asyncio.gather(reader, pinger, return_exceptions=True)
        return hung, back, time.monotonic()

    hung, back, end = asyncio.run(main())
    time.sleep(0.1)
    assert len(notify.pings(until=hung)) >= 3
    silent = notify.pings(hung + 0.5 + 0.25, back)  # stall bound plus one ping period
    assert silent == [], f"pinged {len(silent)} times while no audio flowed"
    assert notify.pings(back, end), "no ping after the audio came back"


def test_a_blocked_event_loop_sends_nothing(notify: NotifySocket) -> None:
    async def main() -> tuple[float, float]:
        heartbeat = HeartbeatInput(Tap())
        dog = Watchdog(Notifier(), 0.3, audio_path_check(heartbeat, lambda: None, stall=5, device_grace=60))
        reader = asyncio.create_task(_read_all(heartbeat))
        pinger = asyncio.create_task(dog.run())
        await asyncio.sleep(0.5)
        start = time.monotonic()
        time.sleep(1.5)  # noqa: ASYNC251 - the point: a call that blocks the loop
        end = time.monotonic()
        await asyncio.sleep(0.3)
        for task in (reader, pinger):
            task.cancel()
        await asyncio.gather(reader, pinger, return_exceptions=True)
        return start, end

    start, end = asyncio.run(main())
    time.sleep(0.1)
    assert notify.pings(start + 0.01, end - 0.01) == []
    assert notify.pings(until=start) and notify.pings(end)


def test_a_microphone_being_reopened_is_alive_until_the_grace_runs_out(notify: NotifySocket) -> None:
    async def main() -> tuple[float, float]:
        tap = Tap()
        tap.flowing.clear()
        heartbeat = HeartbeatInput(tap)
        lost = time.monotonic()
        dog = Watchdog(Notifier(), 0.3, audio_path_check(heartbeat, lambda: lost, stall=0.2, device_grace=1.0))
        pinger = asyncio.create_task(dog.run())
        await asyncio.sleep(2.0)
        assert dog.problem is not None and "microphone unavailable" in dog.problem
        pinger.cancel()
        await asyncio.gather(pinger, return_exceptions=True)
        return lost, time.monotonic()

    lost, end = asyncio.run(main())
    time.sleep(0.1)
    assert notify.pings(lost, lost + 0.9), "no pings while the microphone was being reopened"
    assert notify.pings(lost + 1.1, end) == []
    assert any(m.startswith("STATUS=stalled: microphone unavailable") for _, m in notify.messages)


def test_watchdog_interval_follows_sd_watchdog_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert watchdog_interval() is None


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert Notifier().ready("x") is False


def test_room_audio_reaching_a_room_session_counts_as_alive_while_the_local_path_is_quiet() -> None:
    heartbeat = HeartbeatInput(_Never())
    room_frame_at = time.monotonic()
    heartbeat.last_frame_at = room_frame_at - 10.0  # the local session has taken nothing for 10 s
    check = audio_path_check(heartbeat, lambda: None, stall=5, device_grace=60, also_alive=lambda: room_frame_at)
    assert check() is None
    room_frame_at -= 10.0  # and the room's audio stopped too
    assert check() is not None and "no audio reached the agent" in str(check())


class _Never(AudioInput):
    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        raise AssertionError("not read in this test")
