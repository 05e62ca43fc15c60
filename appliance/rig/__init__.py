"""The test and bench rig: a private PulseAudio server with a virtual microphone and speaker, and the daemon
run as a subprocess and watched from outside. Used by ``appliance-cli bench`` and the end-to-end tests; the
appliance itself never imports it."""
