"""`whisper-api transcribe`: files on this machine through the same service, with no server."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
from tqdm import tqdm

from whisper_api.audio import AudioError
from whisper_api.engine.catalog import ModelNotFound
from whisper_api.engine.types import DecodeOptions, Transcript
from whisper_api.http.app import build_engine
from whisper_api.http.render import response_body
from whisper_api.service.transcription import InvalidRequest, Limits, TranscriptionService
from whisper_api.settings import Settings


def render(transcript: Transcript, output_format: str) -> str:
    body = response_body(transcript, output_format, with_words=True, include_logprobs=False)
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
) -> int:
    """Print each file's transcript to stdout; returns the process exit status."""
    engine = build_engine(settings)
    service = TranscriptionService(engine, engine.catalog, Limits(settings.max_audio_seconds, None))
    failed = 0
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
            with tqdm(
                total=100,
                desc=path.name,
                unit="%",
                file=sys.stderr,
                leave=False,
                disable=not sys.stderr.isatty(),
            ) as bar:

                def advance(percent: int, bar: tqdm = bar) -> None:
                    bar.update(max(0, percent - bar.n))

                transcript = await engine.transcribe(model_file, samples, options, on_progress=advance)
            if len(files) > 1 and output_format == "text":
                print(f"==> {path} <==")
            sys.stdout.write(render(transcript, output_format))
    except (ModelNotFound, InvalidRequest) as error:
        print(f"whisper-api: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2
    finally:
        await engine.close()
    return 1 if failed else 0
