"""Self-hosted, OpenAI-compatible speech-to-text on whisper.cpp."""

__version__ = "0.1.0"
