"""The LiveKit room bridge: the same agent, heard and spoken through a LiveKit room.

Optional extra ``appliance[livekit]`` (``./scripts/install --livekit``).
"""
