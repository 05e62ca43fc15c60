"""The token the device joins with: minted from the key and secret with the grants the bridge needs, or a
pre-made one checked first; what is missing or wrong is said in one line, and never with a secret in it."""

from __future__ import annotations

import datetime
import sys
import time

import jwt
import livekit
import pytest
from livekit import api

from appliance.bridge.token import room_token
from appliance.config.livekit import LiveKitConfig
from appliance.errors import BridgeError

KEY = "APIkitchen"
SECRET = "kitchen-secret-that-must-never-show-0123456789"


def config(**changes: object) -> LiveKitConfig:
    settings: dict[str, object] = {
        "mode": "agent",
        "url": "ws://127.0.0.1:7880",
        "room": "kitchen",
        "identity": "kitchen-device",
        "api_key": KEY,
        "api_secret": SECRET,
        "token_ttl": 600.0,
    }
    return LiveKitConfig(**{**settings, **changes})  # type: ignore[arg-type]


def premade(room: str = "kitchen", ttl: float = 3600.0, key: str = "APIelsewhere") -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    token = api.AccessToken(key, "elsewhere-secret-elsewhere-secret-0123").with_identity("phone").with_grants(grants)
    return token.with_ttl(datetime.timedelta(seconds=ttl)).to_jwt()


def refusal(settings: LiveKitConfig, room: str = "") -> BridgeError:
    with pytest.raises(BridgeError) as caught:
        room_token(settings, room)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert not caught.value.retryable
    return caught.value


def test_a_minted_token_verifies_with_the_identity_room_and_grants_the_bridge_needs() -> None:
    token = room_token(config(), "")
    claims = api.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.identity == "kitchen-device"
    assert claims.video is not None
    assert claims.video.room == "kitchen" and claims.video.room_join
    assert claims.video.can_publish and claims.video.can_subscribe and claims.video.can_update_own_metadata
    assert not claims.video.room_admin and not claims.video.room_create


def test_a_minted_token_lasts_token_ttl_and_a_room_given_overrides_the_configs() -> None:
    token = room_token(config(), "garage")
    video = api.TokenVerifier(KEY, SECRET).verify(token).video
    assert video is not None and video.room == "garage"
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert abs(exp - (time.time() + 600)) < 5


def test_a_token_signed_with_another_secret_does_not_verify() -> None:
    token = room_token(config(api_secret="another-secret-another-secret-0123456789"), "")
    with pytest.raises(Exception, match="Signature verification failed"):
        api.TokenVerifier(KEY, SECRET).verify(token)


def test_a_premade_token_is_used_as_given_without_the_key_or_secret() -> None:
    token = premade()
    assert room_token(config(token=token, api_key=None, api_secret=None), "") == token


def test_an_expired_premade_token_is_refused_saying_when_and_how_to_fix_it() -> None:
    token = premade(ttl=-2 * 3600)
    error = refusal(config(token=token))
    message = str(error)
    assert message.startswith("LIVEKIT_TOKEN expired at ")
    assert "(2 h ago)" in message
    assert "lk token create --join" in message and "LIVEKIT_API_KEY and LIVEKIT_API_SECRET" in message
    assert token not in message and token.split(".")[2] not in message


def test_a_premade_token_for_another_room_or_not_a_jwt_is_refused() -> None:
    assert "is for room 'garage', not 'kitchen'" in str(refusal(config(token=premade(room="garage"))))
    assert "is not a LiveKit token (a JWT" in str(refusal(config(token="not-a-token")))
    assert "is not a LiveKit token (a JWT" in str(refusal(config(token="a.%%%.c")))


def test_a_missing_secret_or_key_or_url_or_room_is_named_with_the_fix() -> None:
    assert "LIVEKIT_API_SECRET" in str(refusal(config(api_secret=None)))
    assert "LIVEKIT_API_KEY" in str(refusal(config(api_key=None)))
    assert "livekit.url is not set" in str(refusal(config(url="")))
    assert "livekit.room is not set" in str(refusal(config(room="")))


def test_the_secret_is_in_no_repr_and_no_error() -> None:
    settings = config()
    assert SECRET not in repr(settings) and KEY not in repr(settings)
    for broken in (config(url=""), config(token="x.y.z"), config(token=premade(ttl=-60)), config(room="")):
        refusal(broken)


def test_without_the_livekit_extra_minting_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(livekit, "api")
    monkeypatch.setitem(sys.modules, "livekit.api", None)
    assert "install the livekit extra: ./scripts/install --livekit" in str(refusal(config()))
