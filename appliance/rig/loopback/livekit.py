"""A loopback LiveKit server's front door: the signal endpoints a client asks first, with livekit-server's
authentication and its error answers, so the real SDK fails here the ways it fails against the real server.

The SDK (livekit 1.2.1) upgrades ``/rtc/v1`` to a websocket (``/rtc`` after a 404 there), and after a failed
upgrade asks ``/rtc/v1/validate`` (``/rtc/validate``) to learn why; both carry the token as ``Authorization:
Bearer``. As livekit-server does (``pkg/service/auth.go``, ``rtcservice.go``), the token is checked against
``keys`` in this order, each failure a 401 with the error's text as a plain body:

- not a JWT: ``invalid authorization token``;
- issuer not one of ``keys``: ``invalid API key``;
- signature not made with that key's secret: ``invalid authorization token: token signature is invalid: ...``;
- no ``exp`` / past ``exp`` / before ``nbf`` (one minute of leeway): ``... token has invalid claims: ...``;
- no ``video`` grant: ``no permissions to access the room``; no ``roomJoin``: ``permissions denied``.

It stops where the real server would start the session: a token it accepts gets the websocket and then nothing
(no ``JoinResponse``; the SDK gives up on its own timeouts), and ``/validate`` answers ``success``.

What each fault does here (``set_fault`` / ``fail_next``; every request takes one, the upgrade and the
``/validate`` after it each):

- ``STATUS_401``: ``invalid API key`` whatever the token.
- ``STATUS_500``: 500 with a server-side failure's text.
- ``HANG_BEFORE_FIRST``: the request is read and never answered.
- ``REFUSED``: nothing listens (the port is closed).

``not_livekit = True`` makes it a web server that is not LiveKit: 404 ``404 page not found`` on every path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.server import LoopbackServer

API_KEY = "APIloopback"
API_SECRET = "loopback-secret-loopback-secret-0123456789"
"""The key and secret the server knows by default (a secret of 32+ bytes, as PyJWT wants for HS256)."""
LEEWAY = 60.0
"""Seconds of clock skew allowed on ``exp`` and ``nbf`` (livekit-server's ``tokenLeeway``)."""
SIGNAL_PATHS = ("/rtc", "/rtc/v1")

_BAD_TOKEN = "invalid authorization token"
_FAULTS: dict[Fault, tuple[int, str]] = {
    Fault.STATUS_401: (401, "invalid API key"),
    Fault.STATUS_500: (500, "could not create room: internal error"),
}


class LiveKitServer(LoopbackServer):
    """LiveKit's signal entry points on 127.0.0.1 (``ws_url`` is what a client is given)."""

    def __init__(self, *, keys: dict[str, str] | None = None, trickle_delay: float = 0.3) -> None:
        super().__init__(trickle_delay=trickle_delay)
        self.keys = dict(keys) if keys is not None else {API_KEY: API_SECRET}
        """API key -> secret: the tokens it accepts."""
        self.not_livekit = False
        """True: answer 404 on every path, as a web server that is not LiveKit."""
        self.paths: list[str] = []
        """The path of every request, in order (what the SDK asked)."""
        self.last_claims: dict[str, Any] | None = None
        """The claims of the last token it accepted."""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        for path in SIGNAL_PATHS:
            app.router.add_get(path, self._signal)
            app.router.add_get(f"{path}/validate", self._validate)
        app.router.add_route("*", "/{tail:.*}", self._other)

    async def _other(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        self.take_fault()
        return _not_found()

    async def _validate(self, request: web.Request) -> web.Response:
        refusal = await self._refusal(request)
        return refusal or web.Response(text="success")

    async def _signal(self, request: web.Request) -> web.StreamResponse:
        refusal = await self._refusal(request)
        if refusal is not None:
            return refusal
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Bad Request")
        await ws.prepare(request)
        async for msg in ws:  # the session would start here: nothing is sent, the client's messages are read
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        return ws

    async def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer that turns the request away (the fault's, 404, or the token's), None to serve it."""
        self.paths.append(request.path)
        fault = self.take_fault()
        if self.not_livekit:
            return _not_found()
        if fault is Fault.HANG_BEFORE_FIRST:
            await self.hold()
        if fault in _FAULTS:
            return _error(*_FAULTS[fault])
        if fault is not Fault.NONE:
            return _error(501, f"the loopback LiveKit server does not simulate the fault {fault.value!r}")
        return self._authenticate(request)

    def _authenticate(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if header and not header.startswith("Bearer "):
            return _error(401, "invalid authorization header. Must start with Bearer ")
        raw = header.removeprefix("Bearer ") if header else request.query.get("access_token", "")
        if not raw:
            return _error(401, "no permissions to access the room")
        parsed = _parse(raw)
        if parsed is None:
            return _error(401, _BAD_TOKEN)
        claims, signed, signature = parsed
        secret = self.keys.get(str(claims.get("iss", "")))
        if not secret:
            return _error(401, "invalid API key")
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            return _error(401, f"{_BAD_TOKEN}: token signature is invalid: signature is invalid")
        problem = _claims_problem(claims, time.time())
        if problem:
            return _error(401, f"{_BAD_TOKEN}: token has invalid claims: {problem}")
        video = claims.get("video")
        if not isinstance(video, dict):
            return _error(401, "no permissions to access the room")
        if not video.get("roomJoin"):
            return _error(401, "permissions denied")
        self.last_claims = claims
        return None


def _parse(raw: str) -> tuple[dict[str, Any], bytes, bytes] | None:
    """(claims, the signed part, the signature) of an HS256 JWT, None if it is not one."""
    parts = raw.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (json.loads(_unbase64(p)) for p in parts[:2])
        signature = _unbase64(parts[2])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    return claims, f"{parts[0]}.{parts[1]}".encode(), signature


def _claims_problem(claims: dict[str, Any], now: float) -> str:
    """golang-jwt's words for what is wrong with the claims' times, empty if nothing."""
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float):
        return "token is missing required claim: exp claim is required"
    if now > exp + LEEWAY:
        return "token is expired"
    if isinstance(nbf, int | float) and now < nbf - LEEWAY:
        return "token is not valid yet"
    return ""


def _unbase64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _error(status: int, text: str) -> web.Response:
    """livekit-server's ``HandleError``: the status, and the error's text as the body."""
    return web.Response(status=status, text=text)


def _not_found() -> web.Response:
    """Go's ``http.NotFound``, as a web server that is not LiveKit answers."""
    return web.Response(status=404, text="404 page not found\n")
