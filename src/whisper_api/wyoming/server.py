"""The Wyoming server: Home Assistant's speech-to-text conversation, answered by the transcription service.

A client (Home Assistant's Assist pipeline, a voice satellite) connects and sends events:

- `describe` → `info`: this program, its models (the default first) and each one's languages;
- `transcribe` (optional: model `name`, `language`, and `transcript_names`/`_terms` as a prompt), then
  `audio-start`, `audio-chunk`s of integer PCM at whatever rate, width and channel count each declares, and
  `audio-stop` → `transcript-start`, a `transcript-chunk` per segment as whisper.cpp decodes it, `transcript`
  (the whole text, what clients without streaming wait for) and `transcript-stop`;
- `ping` → `pong`. Other events are dropped, as the protocol asks of servers (they are for other programs).

The connection stays open for further requests. Anything wrong (an event that cannot be read or whose data
is not what its type needs, audio past the duration limit, an unknown model, a full queue, nothing sent for
--live-idle-seconds, one connection more than --max-live-streams) is answered with an `error` event and the
connection is closed; the server goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import msgspec
import numpy as np
import structlog
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.ping import Ping, Pong

from whisper_api import __version__
from whisper_api.audio import SAMPLE_RATE
from whisper_api.audio.stream import PCM_ENCODINGS, RAW_MAX_CHANNELS, RAW_SAMPLE_RATES, PcmStream, RawFormat
from whisper_api.engine.types import DecodeOptions
from whisper_api.errors import ServiceError, TimedOutError
from whisper_api.ops import metrics
from whisper_api.service.live import TooManyStreams
from whisper_api.service.transcription import TranscriptionService, Usage
from whisper_api.service.types import ModelFile, Segment
from whisper_api.wyoming.protocol import MAX_LINE_BYTES, MalformedEvent, read_event

log = structlog.get_logger("whisper_api.wyoming")

_PROGRAM = AsrProgram(
    name="whisper-api",
    description="Whisper speech to text on whisper.cpp (whisper-api)",
    attribution=Attribution(name="whisper.cpp", url="https://github.com/ggml-org/whisper.cpp"),
    installed=True,
    version=__version__,
    models=[],
    supports_transcript_streaming=True,
)
_WHISPER = Attribution(name="OpenAI", url="https://github.com/openai/whisper")
#: How long a connection that ends in an error still reads (and drops) what its client sends.
_LINGER_SECONDS = 2.0
#: Non-speech tokens suppressed (the default), as by wyoming-faster-whisper: whisper.cpp's own default would
#: answer a satellite's silence with "[BLANK_AUDIO]", which Home Assistant would take for a command.
_OPTIONS = DecodeOptions()
#: Codes Home Assistant counts as the same language as whisper's (its util/language.py SAME_LANGUAGES), and
#: may send for it: a pipeline in Bokmål matches whisper's Norwegian.
_SAME_LANGUAGES = {"nb": "no", "iw": "he"}


class _Format(msgspec.Struct):
    """What an audio-start or audio-chunk says its samples are."""

    rate: Annotated[int, msgspec.Meta(ge=RAW_SAMPLE_RATES[0], le=RAW_SAMPLE_RATES[1])]
    width: Annotated[int, msgspec.Meta(ge=min(PCM_ENCODINGS), le=max(PCM_ENCODINGS))]
    channels: Annotated[int, msgspec.Meta(ge=1, le=RAW_MAX_CHANNELS)]

    @property
    def raw(self) -> RawFormat:
        return RawFormat(PCM_ENCODINGS[self.width], self.rate, self.channels)


class _Transcribe(msgspec.Struct):
    name: str | None = None
    language: str | None = None
    transcript_names: list[str] | None = None
    transcript_terms: list[str] | None = None


T = TypeVar("T")


def _data(event: Event, kind: type[T]) -> T:
    try:
        return msgspec.convert(event.data, kind)
    except msgspec.ValidationError as error:
        raise MalformedEvent(f"The '{event.type}' event's data is not what it should be: {error}.") from None


class IdleTimeout(TimedOutError):
    code = "idle_timeout"


class _ClientGone(Exception):
    """The peer closed the connection or stopped reading; nobody is left to answer."""


class _Audio:
    """A request's audio as it arrives, 16 kHz mono float32, within the duration limit over all of it. Each
    chunk names its own format; a change of format mid-stream starts a new conversion."""

    def __init__(self, max_seconds: float) -> None:
        self._max_seconds = max_seconds
        self._pieces: list[np.ndarray] = []
        self._samples = 0
        self._format: RawFormat | None = None
        self._stream: PcmStream | None = None

    def push(self, raw: RawFormat, payload: bytes) -> None:
        """Convert `payload` (blocking: call it off the event loop); AudioTooLong past the limit."""
        if raw != self._format:
            self._end_stream()
            counted = self._samples / SAMPLE_RATE
            self._format = raw
            self._stream = PcmStream(raw, max_seconds=self._max_seconds, counted=counted)
        assert self._stream is not None
        self._keep(self._stream.push(payload))

    def finish(self) -> np.ndarray:
        self._end_stream()
        return np.concatenate(self._pieces) if self._pieces else np.zeros(0, dtype=np.float32)

    def _end_stream(self) -> None:
        if self._stream is not None:
            self._keep(self._stream.finish())

    def _keep(self, samples: np.ndarray) -> None:
        if samples.size:
            self._pieces.append(samples)
            self._samples += samples.size


@dataclass
class _Request:
    model: ModelFile
    options: DecodeOptions
    audio: _Audio | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    usage: Usage = field(default_factory=Usage)


async def serve(
    service: TranscriptionService, host: str, port: int, *, idle_seconds: float, max_connections: int
) -> None:
    """Answer Wyoming connections on `host`:`port` until cancelled, then end the open ones. Each holds up to
    the duration limit of audio while its client sends it, so one more than `max_connections` is refused."""
    connections: set[asyncio.Task[object]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(service, reader, writer, idle_seconds)
        if len(connections) >= max_connections:
            await connection.refuse(TooManyStreams(max_connections))
            return
        connections.add(task)
        try:
            await connection.run()
        except asyncio.CancelledError:
            pass  # the server is stopping: asyncio would log a cancelled connection handler as a crash
        finally:
            connections.discard(task)

    server = await asyncio.start_server(accept, host, port, limit=MAX_LINE_BYTES)
    log.info("wyoming_listening", host=host, port=port)
    try:
        await asyncio.get_running_loop().create_future()  # until cancelled
    finally:
        server.close()
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()


class _Connection:
    def __init__(
        self,
        service: TranscriptionService,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        idle_seconds: float,
    ) -> None:
        self._service = service
        self._reader = reader
        self._writer = writer
        self._idle_seconds = idle_seconds
        peer = writer.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        # The next event being read: kept across a transcription, during which it tells of a client leaving.
        self._reading: asyncio.Task[Event | None] | None = None
        self._request: _Request | None = None

    async def run(self) -> None:
        metrics.WYOMING_CONNECTIONS.inc()
        ended = "client_closed"
        try:
            while (event := await self._next_event()) is not None:
                await self._handle(event)
        except asyncio.CancelledError:
            ended = "server_stopped"
            raise
        except ServiceError as error:
            await self._fail(error.code or error.kind, error.message)
        except _ClientGone:
            pass
        except Exception:
            log.exception("wyoming_connection_failed", peer=self._peer)
            await self._fail("internal_error", "The server had an error while processing the request.")
        finally:
            if self._request is not None:
                self._record(self._request, ended)
            if self._reading is not None:
                self._reading.cancel()
            self._writer.close()
            metrics.WYOMING_CONNECTIONS.dec()

    async def refuse(self, error: ServiceError) -> None:
        """Answer `error` before reading anything, then close."""
        try:
            await self._fail(error.code or error.kind, error.message)
        finally:
            self._writer.close()

    # -- events ----------------------------------------------------------------------------------

    async def _handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self._send(await self._info())
        elif Ping.is_type(event.type):
            text = event.data.get("text")
            await self._send(Pong(text=text if isinstance(text, str) else None).event())
        elif Transcribe.is_type(event.type):
            self._transcribe(_data(event, _Transcribe))
        elif AudioStart.is_type(event.type):
            _data(event, _Format)  # refused now rather than at the first chunk
            self._audio(starting=True)
        elif AudioChunk.is_type(event.type):
            chunk = _data(event, _Format)
            await asyncio.to_thread(self._audio(starting=False).push, chunk.raw, event.payload or b"")
        elif AudioStop.is_type(event.type):
            await self._answer()

    async def _info(self) -> Event:
        default = self._service.default_model
        models = sorted(
            (model for model, _loaded in await asyncio.to_thread(self._service.models)),
            key=lambda model: (model.id != default, model.id),
        )
        described = [
            AsrModel(
                name=model.id,
                description=f"Whisper {model.size_name or 'model'} ({model.weight_type})",
                attribution=_WHISPER,
                installed=True,
                version=None,
                languages=self._service.languages(model),
            )
            for model in models
        ]
        return Info(asr=[dataclasses.replace(_PROGRAM, models=described)]).event()

    def _transcribe(self, request: _Transcribe) -> None:
        if self._request is not None and self._request.audio is not None:
            raise MalformedEvent("'transcribe' arrived during audio; send it before audio-start.")
        model = self._service.model(request.name)
        # Home Assistant names regional languages (en-US); whisper knows languages. "auto" detects, as
        # wyoming-faster-whisper's --language auto does.
        language = (request.language or "").replace("_", "-").split("-")[0].lower()
        language = _SAME_LANGUAGES.get(language, language)
        hints = [*(request.transcript_names or ()), *(request.transcript_terms or ())]
        options = dataclasses.replace(
            _OPTIONS, language=None if language in ("", "auto") else language, prompt=", ".join(hints) or None
        )
        self._service.check(model, options)
        self._request = _Request(model, options)

    def _current(self) -> _Request:
        """The request under way; without a transcribe event (older Home Assistant sends none), one for the
        default model in whatever language is spoken."""
        if self._request is None:
            self._request = _Request(self._service.model(None), _OPTIONS)
        return self._request

    def _audio(self, *, starting: bool) -> _Audio:
        """The request's audio; audio-start begins it, and so does a first chunk without one."""
        request = self._current()
        if request.audio is not None and starting:
            raise MalformedEvent("'audio-start' arrived while audio was streaming; send audio-stop first.")
        if request.audio is None:
            request.audio = _Audio(self._service.limits.max_audio_seconds)
        return request.audio

    async def _answer(self) -> None:
        request = self._current()
        samples = await asyncio.to_thread(request.audio.finish) if request.audio else np.zeros(0, np.float32)
        stopped = time.perf_counter()
        work = asyncio.ensure_future(self._transcribe_and_send(request, samples))
        reading = self._read()
        try:
            await asyncio.wait({work, reading}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and _left(reading):
                raise _ClientGone
            await work
        finally:
            work.cancel()
        metrics.WYOMING_RESPONSE_SECONDS.observe(time.perf_counter() - stopped)
        self._record(request, "ok")
        self._request = None

    async def _transcribe_and_send(self, request: _Request, samples: np.ndarray) -> None:
        language = request.options.language
        if not samples.size:
            await self._send(TranscriptStart(language=language).event())
            await self._send(Transcript(text="", language=language).event())
            await self._send(TranscriptStop().event())
            return
        segments = await self._service.stream(request.model, samples, request.options, request.usage)
        await self._send(TranscriptStart(language=language).event())
        started = False
        async with contextlib.aclosing(segments):
            async for item in segments:
                if isinstance(item, Segment):
                    # Joined, the chunks are the transcript's text, as OpenAI's stream deltas are.
                    text = item.text if started else item.text.lstrip()
                    if text:
                        started = True
                        await self._send(TranscriptChunk(text=text).event())
                else:
                    await self._send(Transcript(text=item.text, language=item.language.code).event())
        await self._send(TranscriptStop().event())

    # -- the connection --------------------------------------------------------------------------

    def _read(self) -> asyncio.Task[Event | None]:
        if self._reading is None:
            self._reading = asyncio.ensure_future(read_event(self._reader))
        return self._reading

    async def _next_event(self) -> Event | None:
        reading = self._read()
        done, _ = await asyncio.wait({reading}, timeout=self._idle_seconds)
        if not done:
            raise IdleTimeout(f"Nothing was received for {self._idle_seconds:g} s; closing the connection.")
        self._reading = None
        return reading.result()

    async def _send(self, event: Event) -> None:
        try:
            # A peer that stops reading would otherwise hold the connection (and its audio) forever.
            await asyncio.wait_for(async_write_event(event, self._writer), self._idle_seconds)
        except (TimeoutError, ConnectionError) as error:
            raise _ClientGone from error

    async def _fail(self, code: str, message: str) -> None:
        metrics.WYOMING_ERRORS.labels(code).inc()
        log.info("wyoming_error", peer=self._peer, code=code, message=message)
        if self._request is not None:
            self._record(self._request, code)
            self._request = None
        with contextlib.suppress(_ClientGone):
            await self._send(Error(text=message, code=code).event())
            await self._linger()

    async def _linger(self) -> None:
        """Half-close, then discard what the client still sends for a moment: closing with its audio unread
        would reset the connection, and a client that reads only after sending (Home Assistant does) could
        lose the error event to the reset."""
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.wait({self._reading})
            self._reading = None
        with contextlib.suppress(TimeoutError, OSError):
            if self._writer.can_write_eof():
                self._writer.write_eof()
            async with asyncio.timeout(_LINGER_SECONDS):
                while await self._reader.read(MAX_LINE_BYTES):
                    pass

    def _record(self, request: _Request, outcome: str) -> None:
        metrics.WYOMING_REQUESTS.labels(outcome).inc()
        usage = request.usage
        log.info(
            "wyoming_request",
            request_id=request.id,
            peer=self._peer,
            outcome=outcome,
            model=usage.model or request.model.id,
            audio_seconds=round(usage.audio_seconds, 3),
            processing_seconds=round(usage.processing_seconds, 3),
            rtf=round(usage.real_time_factor, 4) if usage.real_time_factor is not None else None,
        )


def _left(reading: asyncio.Task[Event | None]) -> bool:
    """Whether the read that was waiting for the client's next event found the connection closed."""
    if not reading.done() or reading.cancelled() or reading.exception() is not None:
        return False
    return reading.result() is None
