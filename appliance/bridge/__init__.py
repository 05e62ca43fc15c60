"""The LiveKit room bridge: the same agent, heard and spoken through a LiveKit room (optional extra ``appliance[livekit]``)."""
