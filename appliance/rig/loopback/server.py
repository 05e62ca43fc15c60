"""The shared part of the loopback servers: an aiohttp app on 127.0.0.1, faults to apply, and a thread to run
it in when the client lives in another process (the daemon) or another event loop."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any

from aiohttp import web

from appliance.rig.loopback.faults import Fault

START_TIMEOUT = 10.0


class LoopbackServer:
    """Subclasses add their routes in ``routes()`` and call ``take_fault()`` once per request.

    ``fail_next(*faults)`` applies faults to the next requests, one each; ``set_fault(fault)`` applies one to
    every request until it is changed. ``Fault.REFUSED`` closes the listening socket (so connections are
    refused) and the open ones, and ``set_fault(Fault.NONE)`` opens it again on the same port.
    """

    def __init__(self, *, trickle_delay: float = 0.3) -> None:
        self.trickle_delay = trickle_delay
        self.requests = 0
        """Requests received (refused connections are not)."""
        self._next: collections.deque[Fault] = collections.deque()
        self._fault = Fault.NONE
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0
        self.sent_audio_bytes = 0
        """Speech bytes written, over all requests."""
        self.received_bytes = 0
        """Request body bytes received, over all requests."""
        self.last_request: dict[str, Any] | None = None
        """The JSON body (or the form fields) of the last request; None if it was neither."""
        self.disconnects = 0
        """Requests held (a hang) that ended because the client went away (or the server stopped)."""
        self.disconnected = asyncio.Event()
        """Set at each of ``disconnects`` (to wait on in the server's own event loop)."""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def take_fault(self) -> Fault:
        self.requests += 1
        return self._next.popleft() if self._next else self._fault

    def fail_next(self, *faults: Fault) -> None:
        self._next.extend(faults)

    async def set_fault(self, fault: Fault) -> None:
        was_refused = self._fault is Fault.REFUSED
        self._fault = fault
        if fault is Fault.REFUSED and not was_refused:
            await self._close_site()
        elif was_refused and fault is not Fault.REFUSED:
            await self._open_site()

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        await self._open_site()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None

    async def _open_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            server = self._site._server
            assert isinstance(server, asyncio.base_events.Server)
            self.port = server.sockets[0].getsockname()[1]

    async def _close_site(self) -> None:
        """Stop listening, and drop the connections a client keeps alive: like a server that went away, the next
        request on any of them fails instead of being served."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server if self._runner is not None else None
        for handler in server.connections if server is not None else ():
            if handler.transport is not None:
                handler.transport.abort()

    async def pause(self) -> None:
        """Sleep as a trickling server does between pieces."""
        await asyncio.sleep(self.trickle_delay)

    async def read_json(self, request: web.Request) -> dict[str, Any] | None:
        """The JSON object of the body (None if it is not one), recorded as ``last_request``."""
        raw = await request.read()
        self.received_bytes += len(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.last_request = body if isinstance(body, dict) else None
        return self.last_request

    async def hang(self) -> None:
        """Stall until the client gives up (the runner cancels a handler whose client disconnected)."""
        await asyncio.Event().wait()

    async def hold(self) -> None:
        """Hang until the client goes away, and count that it did."""
        try:
            await self.hang()
        except asyncio.CancelledError:
            self.disconnects += 1
            self.disconnected.set()
            raise

    async def send_pieces(
        self,
        request: web.Request,
        fault: Fault,
        pieces: Sequence[bytes],
        *,
        headers: dict[str, str],
        malformed: bytes,
        audio: bool,
    ) -> web.StreamResponse:
        """Stream ``pieces`` as a chunked body, as ``fault`` says: hold before or after the first, trickle,
        abort the connection after the first, or send ``malformed`` instead (``headers`` are already the
        fault's: its content type). ``audio``: the pieces count in ``sent_audio_bytes``."""
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        if fault is Fault.HANG_BEFORE_FIRST:
            await self.hold()
        if fault is Fault.MALFORMED:
            await resp.write(malformed)
            await resp.write_eof()
            return resp
        for i, piece in enumerate(pieces):
            if i and fault is Fault.TRICKLE:
                await self.pause()
            await resp.write(piece)
            if audio:
                self.sent_audio_bytes += len(piece)
            if fault is Fault.HANG_AFTER_FIRST:
                await self.hold()
            if fault is Fault.DISCONNECT:
                assert request.transport is not None
                request.transport.abort()
                await self.hang()  # cancelled as the connection is lost
        await resp.write_eof()
        return resp


@contextlib.contextmanager
def serve_in_thread(server: LoopbackServer) -> Iterator[ServerThread]:
    """Run ``server`` on its own event loop in a thread: ``with serve_in_thread(s) as t: t.set_fault(...)``."""
    thread = ServerThread(server)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


class ServerThread:
    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="loopback-server", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self._thread.start()
        self._call(self.server.start())

    def set_fault(self, fault: Fault) -> None:
        self._call(self.server.set_fault(fault))

    def fail_next(self, *faults: Fault) -> None:
        self._loop.call_soon_threadsafe(self.server.fail_next, *faults)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self.server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(START_TIMEOUT)
