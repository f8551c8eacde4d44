"""`whisper-api transcribe`: files on this machine through the same service, with no server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import msgspec
from tqdm import tqdm

from whisper_api.audio import AudioError
from whisper_api.composition import compose
from whisper_api.engine.catalog import ModelNotFound
from whisper_api.engine.types import DecodeOptions, Segment, Transcript
from whisper_api.engine.whisper import SAMPLE_RATE
from whisper_api.http.render import response_body
from whisper_api.service.formats import DEFAULT_SUBTITLES, SubtitleOptions
from whisper_api.service.transcription import InvalidRequest
from whisper_api.settings import Settings

#: whisper decodes audio in windows of this many seconds.
_WINDOW_SECONDS = 30


def render(transcript: Transcript, output_format: str, subtitles: SubtitleOptions = DEFAULT_SUBTITLES) -> str:
    body = response_body(
        transcript, output_format, with_words=True, include_logprobs=False, subtitles=subtitles
    )
    if isinstance(body, str):
        return body
    return msgspec.json.format(msgspec.json.encode(body)).decode() + "\n"


async def transcribe_files(
    settings: Settings,
    files: list[Path],
    *,
    model: str | None,
    options: DecodeOptions,
    output_format: str,
    subtitles: SubtitleOptions = DEFAULT_SUBTITLES,
) -> int:
    """Print each file's transcript to stdout; returns the process exit status."""
    failed = 0
    async with compose(settings, "transcribe").running() as root:
        service = root.transcription
        try:
            model_file = service.model(model)
            service.check(model_file, options)
            for path in files:
                try:
                    samples = await service.decode(path.read_bytes())
                except (AudioError, OSError) as error:
                    print(f"whisper-api: {path}: {getattr(error, 'message', error)}", file=sys.stderr)
                    failed += 1
                    continue
                async with _AudioProgress(path.name, len(samples) / SAMPLE_RATE) as progress:
                    transcript = await root.engine.transcribe(
                        model_file,
                        samples,
                        options,
                        on_progress=progress.window_started,
                        on_segment=progress.segment_decoded,
                    )
                if len(files) > 1 and output_format == "text":
                    print(f"==> {path} <==")
                sys.stdout.write(render(transcript, output_format, subtitles))
        except (ModelNotFound, InvalidRequest) as error:
            print(f"whisper-api: {getattr(error, 'message', error)}", file=sys.stderr)
            return 2
    return 1 if failed else 0


class _AudioProgress:
    """A terminal progress bar in seconds of audio transcribed, redrawn twice a second.

    whisper.cpp reports progress, and hands over its segments, only as each 30 s window is done, so a
    clip of one window shows the time it has been running rather than a bar stuck at 0 %.
    """

    def __init__(self, name: str, duration: float) -> None:
        self._duration = round(duration, 1)
        single_window = duration <= _WINDOW_SECONDS
        self._bar = tqdm(
            total=self._duration,
            desc=name,
            bar_format="{desc}: transcribing [{elapsed}]"
            if single_window
            else "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]",
            file=sys.stderr,
            leave=False,
            disable=not sys.stderr.isatty(),
        )
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _AudioProgress:
        if not self._bar.disable:
            self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self._bar.close()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._bar.refresh()

    def window_started(self, percent: int) -> None:
        self._reached(self._duration * percent / 100)

    def segment_decoded(self, segment: Segment) -> None:
        self._reached(segment.end)

    def _reached(self, seconds: float) -> None:
        self._bar.update(max(0.0, min(seconds, self._duration) - self._bar.n))
