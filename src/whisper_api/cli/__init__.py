"""The `whisper-api` command (main.py) and the processes it runs without an HTTP server: the job worker
(worker.py), local transcription (transcribe.py) and the job API client (remote.py). `serve` is
http/app.py's; every process that transcribes builds what it runs on through composition.py."""

from whisper_api.cli.main import main

__all__ = ["main"]
