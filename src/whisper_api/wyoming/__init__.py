"""Home Assistant's Wyoming protocol: speech to text on a TCP port of its own (`serve --wyoming-port`).

protocol.py reads the peer's events within bounds; server.py answers them through the same
TranscriptionService as the HTTP API, so satellites share the engine's queue and contexts with every
other caller.
"""
