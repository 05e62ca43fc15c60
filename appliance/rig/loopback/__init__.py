"""Loopback stand-ins for the cloud providers: small servers that speak each provider's real wire protocol
(OpenAI's HTTP and SSE, Deepgram's websocket, ElevenLabs' HTTP stream) and can be told to fail the ways the real
ones do. The tests and ``appliance-cli bench --providers`` run the real clients against them."""
