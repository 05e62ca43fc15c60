"""The token the device joins a room with: a pre-made one (``LIVEKIT_TOKEN``) checked before use, or one minted
on the device from the API key and secret.

A token is a secret like the key it is signed with: it is never logged and never put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import time
import warnings
from typing import Any

from appliance.config.livekit import LiveKitConfig
from appliance.errors import BridgeError

INSTALL_FIX = "install the livekit extra: ./scripts/install --livekit"


def room_token(config: LiveKitConfig, room: str = "") -> str:
    """A token for ``config.identity`` to join ``room`` (empty: ``config.room``) and publish, subscribe and set
    its own attributes; the pre-made ``config.token`` when there is one (a ``BridgeError`` if it is not a JWT,
    has expired or is for another room), else one minted here, valid ``config.token_ttl`` seconds."""
    room = room or config.room
    problem = config.missing(room)
    if problem is not None:
        raise BridgeError(problem)
    if config.token:
        check_token(config.token, room)
        return config.token
    assert config.api_key and config.api_secret  # missing() said so
    try:
        from livekit import api
    except ImportError as exc:
        raise BridgeError(f"the LiveKit bridge is not installed; {INSTALL_FIX}") from exc
    grants = api.VideoGrants(
        room_join=True, room=room, can_publish=True, can_subscribe=True, can_update_own_metadata=True
    )
    token = (
        api.AccessToken(config.api_key, config.api_secret)
        .with_identity(config.identity)
        .with_grants(grants)
        .with_ttl(datetime.timedelta(seconds=config.token_ttl))
    )
    with warnings.catch_warnings():
        # PyJWT warns of a secret under 32 bytes; livekit-server --dev's is "secret", and the server chose it
        warnings.filterwarnings("ignore", message="The HMAC key is")
        return token.to_jwt()


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read WITHOUT checking its signature (only the server knows the secret): what the
    device can tell about a pre-made token before it is used."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BridgeError(
            "LIVEKIT_TOKEN is not a LiveKit token (a JWT: three base64 parts joined by dots); make one with "
            "`lk token create --join --room ROOM --identity ID` or set LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
        ) from exc
    if not isinstance(claims, dict):
        raise BridgeError("LIVEKIT_TOKEN has no claims object; make a new token with `lk token create --join`")
    return claims


def check_token(token: str, room: str, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a pre-made token, or a ``BridgeError`` saying what is wrong with it and how to fix it:
    not a JWT, expired (and when), or made for another room."""
    claims = token_claims(token)
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if isinstance(exp, int | float) and exp <= now:
        at = datetime.datetime.fromtimestamp(exp, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise BridgeError(
            f"LIVEKIT_TOKEN expired at {at} ({_ago(now - exp)} ago); make a new one (`lk token create --join`, "
            "valid longer with --valid-for) or set LIVEKIT_API_KEY and LIVEKIT_API_SECRET so the device mints its own"
        )
    video = claims.get("video")
    granted = video.get("room", "") if isinstance(video, dict) else ""
    if granted and granted != room:
        raise BridgeError(
            f"LIVEKIT_TOKEN is for room {granted!r}, not {room!r}; make a token for room {room!r} or join {granted!r}"
        )
    return claims


def _ago(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"
