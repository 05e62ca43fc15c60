"""The appliance as a long-running process: devices, agent, systemd, status, metrics, and a clean stop.

Start: devices are checked before any model loads (a wrong name fails in a second), the models load, the
microphone and speaker open, and only then is systemd told READY. Stop: the first SIGTERM (or SIGINT) takes no
new turns, lets the reply finish the sentence it is in (at most ``service.stop_timeout``), saves the
conversation and tells systemd STOPPING; a second signal saves the turn in progress as far as it was heard
(within 0.1 s) and exits at once, dying of that signal as systemd expects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

from appliance.agent import Agent, AgentSession, EventType
from appliance.agent import events as ev
from appliance.audio.capture import QUIET_HOLD, ErrorCallback, MicrophoneInput
from appliance.audio.playback import SpeakerOutput
from appliance.bridge.aside import AsideInput
from appliance.bridge.device import DeviceBridge
from appliance.config import Config, check_devices
from appliance.config.check import check_metrics, model_keys
from appliance.echo.setup import echo_cancelling
from appliance.engines import Models
from appliance.errors import ApplianceError, AudioDeviceError, ConfigError
from appliance.intents.tools import DeviceAgent
from appliance.models.watch import watch as watch_models
from appliance.providers.chains import Stages, check_chains, describe
from appliance.service.hard_stop import STOP_SIGNALS, HardStop
from appliance.service.intents import DeviceIntents
from appliance.service.metrics import Metrics
from appliance.service.notify import Notifier, watchdog_interval
from appliance.service.record import ConversationRecord
from appliance.service.stats import TurnStats
from appliance.service.status import StatusServer
from appliance.service.watchdog import HeartbeatInput, Watchdog, audio_path_check
from appliance.utils.aio import cancel_and_wait
from appliance.utils.stats import or_nan

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
"""Seconds the clean-up after the last sentence may take (closing devices and tasks) before exiting anyway."""
DEVICE_GRACE = 600.0
"""Seconds a lost microphone is retried in-process while the watchdog is still fed; then systemd restarts us."""


def quiet_hold(config: Config) -> float:
    """Seconds of quiet before the microphone hands over blocks in pairs: past the longest silence that ends
    a turn, so ending one is never later."""
    o = config.agent
    return max(QUIET_HOLD, o.min_endpointing_delay + 1.0, o.max_endpointing_delay + 1.0)


def build_session(config: Config, models: Models) -> tuple[AgentSession, Stages]:
    """Load every engine the config names (the slow part of a start)."""
    choice = config.engines()
    stages = Stages(config, models)
    session = AgentSession(
        wake=models.wake(choice) if config.agent.require_wake_word else None,
        vad=models.vad(choice),
        stt=stages.stt,
        llm=stages.llm,
        tts=stages.tts,
        options=config.agent,
        turn_detector=models.turn_detector(choice) if config.agent.turn_detection == "model" else None,
    )
    return session, stages


def run_daemon(config: Config, models: Models, *, print_events: bool = False) -> int:
    notifier = Notifier()
    check_chains(config)  # a cloud provider without its key fails here, before a minute of model loading
    if config.livekit.enabled and (missing := config.livekit.missing()):
        raise ConfigError(missing)  # the room's settings too, before the models load
    exposed = check_metrics(config)  # and so does a metrics address that cannot be listened on
    if exposed:
        logger.warning("metrics exposed", extra={"warning": exposed})
    notifier.status("checking sound devices")
    check_devices(config)  # and so does a wrong device name
    notifier.status("loading models")
    session, stages = build_session(config, models)
    logger.info("models loaded", extra={k: round(v, 2) for k, v in models.load_seconds.items()})
    logger.info("providers", extra=describe(config))
    daemon = Daemon(config, session, notifier, stages=stages, print_events=print_events, models=models)
    return asyncio.run(daemon.serve())


class Daemon:
    def __init__(
        self,
        config: Config,
        session: AgentSession,
        notifier: Notifier,
        *,
        stages: Stages | None = None,
        print_events: bool,
        models: Models | None = None,
    ) -> None:
        """``models``: the store the engines were loaded from, checked again while the daemon runs."""
        self.config = config
        self.models = models
        self._model_watch: asyncio.Task[None] | None = None
        self.session = session
        self.notifier = notifier
        self.stages = stages
        self.stats = TurnStats()
        self.metrics = Metrics(self.stats, stages) if config.metrics.enabled else None
        self.mic = MicrophoneInput(
            config.audio.input_device,
            on_error=self._device_error("microphone"),
            quiet_level=config.vad.energy_floor,
            quiet_hold=quiet_hold(config),
        )
        self.speaker = SpeakerOutput(
            config.audio.output_device,
            session.tts.sample_rate,
            on_error=self._device_error("speaker"),
            rest_after=config.audio.speaker_rest_after,
        )
        self.echo = echo_cancelling(config, self.mic, self.speaker)
        self.aside = AsideInput(self.echo or self.mic)
        """The microphone as the local session hears it: silence while a room has the device."""
        self.heartbeat = HeartbeatInput(self.aside)
        self.bridge: DeviceBridge | None = None
        self.status = StatusServer(config.service.socket_path(), self.snapshot)
        self.state_dir = config.service.state_path()
        self.watchdog: Watchdog | None = None
        self.ready = False
        self._stop = asyncio.Event()
        self._hard_stop: HardStop | None = None
        self.stats.attach(session)
        if stages is not None:
            stages.on_availability_changed(
                lambda e: session.emit(ev.AvailabilityChangedEvent(e.stage, e.provider, e.available, e.reason))
            )
        if self.metrics is not None:
            self.metrics.attach(session)
            self.metrics.gauge(
                "appliance_microphone_dropped_blocks", "Blocks the agent read too late", lambda: self.mic.dropped_blocks
            )
            self.metrics.gauge(
                "appliance_microphone_xruns", "Input overflows reported by the microphone", lambda: self.mic.xruns
            )
            self.metrics.gauge(
                "appliance_speaker_xruns", "Output underflows reported by the speaker", lambda: self.speaker.xruns
            )
            if self.echo is not None:
                figures = self.echo.canceller.figures
                self.metrics.gauge(
                    "appliance_echo_erle_db",
                    "Echo taken out of the microphone over the last 2 s of playback, dB (NaN until known)",
                    lambda: or_nan(figures().erle_db),
                )
        if print_events:
            for kind in EventType:
                session.on(kind, _print_event)
        self.record_problem: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.record = self._open_record() if config.agent.keep_history else None
        if self.record is not None:
            record = self.record
            session.on(EventType.CONVERSATION_ITEM_ADDED, lambda e: record.add(e.item))
            session.on(EventType.CONVERSATION_ITEM_UPDATED, lambda e: record.add(e.item))  # a reply, as heard so far
        self.intents = DeviceIntents.open(self.state_dir, session) if config.agent.intents else None
        if self.intents is not None:
            session.intents = self.intents.handler
            mixer = self.intents.mixer
            self.speaker.volume = lambda: mixer.gain  # 1.0 unless no mixer could take the level

    def _open_record(self) -> ConversationRecord | None:
        """The conversation record; a state directory that cannot hold one is logged, counted as an error of
        the record (``status``, metrics) and not fatal."""
        try:
            return ConversationRecord.in_dir(
                self.state_dir,
                retention_days=self.config.agent.history_retention_days,
                on_error=self._record_failed,
            )
        except (OSError, ApplianceError) as exc:
            logger.warning("conversation not recorded", extra={"dir": str(self.state_dir), "error": str(exc)})
            self.record_problem = f"not recorded: {exc}"
            self.session.report_error(exc if isinstance(exc, Exception) else OSError(str(exc)), "record")
            return None

    def _record_failed(self, error: Exception) -> None:
        """From the record's writer thread: the error is the session's to tell, on its loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.session.report_error, error, "record")

    def _device_error(self, source: str) -> ErrorCallback:
        def report(error: AudioDeviceError | None) -> None:
            if error is not None:
                self.session.report_error(error, source)
                self.notifier.status(f"{source} unavailable, retrying: {error}")
            else:
                self.notifier.status(f"{source} back; {self._ready_status()}")

        return report

    def _ready_status(self) -> str:
        o = self.config.agent
        words = ", ".join(self.config.wake.words)
        return f"listening for {words}" if o.require_wake_word else "listening (no wake word)"

    async def serve(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)
        history = None
        if self.record is not None:
            history = await asyncio.to_thread(
                self.record.restore, self.config.agent.history_ttl, self.config.agent.max_history
            )
        try:
            if self.metrics is not None:
                self.metrics.serve(self.config.metrics)
            self.mic.open()
            await self.speaker.start()
            await self.status.start()
            instructions = self.config.agent.instructions
            agent = (
                DeviceAgent(instructions, self.intents.handler, chat_ctx=history)
                if self.intents is not None
                else Agent(instructions, chat_ctx=history)
            )
            await self.session.start(
                agent,
                audio_input=self.heartbeat,
                audio_output=self.speaker,
            )
            if self.intents is not None:
                await self.intents.start()  # after the session: a timer that fell due meanwhile rings through it
            if self.config.livekit.enabled:
                self.notifier.status("joining the LiveKit room")
                self.bridge = self._room_bridge()
                await self.bridge.start()  # a bad key or URL fails the start here, in one line
                if self.intents is not None and self.config.livekit.mode == "relay":
                    self.intents.handler.calls = self.bridge  # "call the kitchen", "hang up"
            tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self._stop.wait(), name="daemon-stop")]
            tasks.append(asyncio.create_task(self.session.wait(), name="daemon-input"))
            interval = watchdog_interval()
            if interval is not None:
                check = audio_path_check(
                    self.heartbeat,
                    lambda: self.mic.recovering_since,
                    self.config.service.watchdog_stall,
                    DEVICE_GRACE,
                    also_alive=(lambda: bridge.last_frame_at) if (bridge := self.bridge) is not None else None,
                )
                self.watchdog = Watchdog(self.notifier, interval, check)
                tasks.append(asyncio.create_task(self.watchdog.run(), name="daemon-watchdog"))
            self.ready = True
            self.notifier.ready(self._ready_status())
            if self.models is not None:
                self._model_watch = asyncio.create_task(self._watch_models(self.models), name="daemon-model-watch")
            logger.info(
                "ready",
                extra={
                    "microphone": self.mic.device_name,
                    "speaker": self.speaker.device_name,
                    "watchdog": interval,
                    "config": str(self.config.source),
                },
            )
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait(*tasks)
            if not self._stop.is_set():
                print("error: the microphone input ended; see the log above", file=sys.stderr)
                return 1
            return 0
        finally:
            await self._shutdown()

    def _room_bridge(self) -> DeviceBridge:
        from appliance.bridge.livekit_room import LiveKitRoom

        lk = self.config.livekit
        instructions = self.config.agent.instructions
        bridge = DeviceBridge(
            lk, self.session, self.aside, self.speaker, lambda room: LiveKitRoom(lk, room), lambda: Agent(instructions)
        )
        if self.metrics is not None:
            for name, documentation, read in bridge.gauges():
                self.metrics.gauge(name, documentation, read)

        def attach(session: AgentSession | None) -> None:
            if session is not None:
                self.stats.attach(session)
                if self.metrics is not None:
                    self.metrics.attach(session)

        bridge.on_session = attach
        return bridge

    def _on_signal(self, signum: int) -> None:
        """The first signal starts the stop. From then on the signals are no longer the loop's: a second one,
        or the stop's bound passing, saves the turn in progress and ends the process at once, from a thread of
        its own, even if a device call blocks the loop (``HardStop``)."""
        if self._hard_stop is not None:  # both signals came while the loop was busy: the loop got them both
            self._hard_stop.end(signal.Signals(signum))
        loop = asyncio.get_running_loop()
        for other in STOP_SIGNALS:
            loop.remove_signal_handler(other)
        bound = self.config.service.stop_timeout + CLOSE_TIMEOUT + 1.0
        self._hard_stop = HardStop(self._save_turn)
        self._hard_stop.arm(bound)
        logger.info("stopping", extra={"signal": signal.Signals(signum).name, "bound": bound})
        self.notifier.stopping("stopping: finishing the current sentence")
        self._stop.set()

    def _save_turn(self, within: float) -> bool:
        """From the hard stop's thread: the reply being spoken, as far as it was heard, and every item before
        it (the user's words) in the record within ``within`` seconds. True if all of it got there."""
        if self.record is None:
            return True
        return self.record.save_now(self.session.heard_so_far(), within)

    async def _shutdown(self) -> None:
        if not self._stop.is_set():  # not stopped by a signal: the input ended or the start failed
            self.notifier.stopping("stopping")
        bound = self.config.service.stop_timeout
        if self.ready:
            finished = await self.session.finish_sentence(bound)
            if not finished:
                logger.warning("reply still playing at the stop bound: cut", extra={"seconds": bound})
        try:
            await asyncio.wait_for(self._close(), CLOSE_TIMEOUT)
        except TimeoutError:
            logger.error("clean-up did not finish: exiting anyway", extra={"seconds": CLOSE_TIMEOUT})
        logger.info("stopped", extra={"turns": self.stats.turns})

    async def _watch_models(self, models: Models) -> None:
        names = {name for _, name, _ in model_keys(self.config)}
        specs = [models.specs[name] for name in sorted(names) if name in models.specs]
        await watch_models(models.store, specs, lambda error: self.session.report_error(error, "models"))

    async def _close(self) -> None:
        await cancel_and_wait(self._model_watch)
        if self.bridge is not None:
            await self.bridge.aclose()
        await self.session.aclose()
        if self.intents is not None:
            await self.intents.aclose()
        if self.stages is not None:
            await self.stages.aclose()
        if self.record is not None:
            await asyncio.to_thread(self.record.close)  # every item written before the exit
        await self.status.aclose()
        await self.mic.aclose()
        await self.speaker.aclose()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)

    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "state": self.session.state.value,
            "ready": self.ready,
            "stopping": self._stop.is_set(),
            "config": str(self.config.source) if self.config.source else None,
            "microphone": {
                "device": self.mic.device_name,
                "dropped_blocks": self.mic.dropped_blocks,
                "xruns": self.mic.xruns,
                "recovering": self.mic.recovering_since is not None,
            },
            "speaker": {"device": self.speaker.device_name, "xruns": self.speaker.xruns},
            "echo_cancellation": self.echo.snapshot() if self.echo is not None else None,
            "livekit": self.bridge.snapshot() if self.bridge is not None else None,
            "watchdog": {
                "enabled": self.watchdog is not None,
                "pings": self.watchdog.pings if self.watchdog else 0,
                "problem": self.watchdog.problem if self.watchdog else None,
            },
            "metrics": f"http://{self.config.metrics.host}:{self.config.metrics.port}/metrics"
            if self.config.metrics.enabled
            else None,
            "record": self.record.health() if self.record is not None else {"problem": self.record_problem},
            **self.stats.snapshot(),
            **(self.stages.snapshot() if self.stages is not None else {}),
        }


def _print_event(event: ev.AgentEvent) -> None:
    print(json.dumps(ev.to_dict(event), default=str), flush=True)
