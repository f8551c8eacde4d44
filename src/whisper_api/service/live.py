"""Live transcription: audio arriving in real time in, phrase results out, as it is spoken.

Silero VAD (through whisper.cpp) scores every 32 ms of audio as it arrives. A phrase starts when
speech does; while it lasts, an interim result re-transcribes it from its start every second or so
(when asked for); when the speaker has been silent for the endpointing time, the phrase is
transcribed once more and sent as final. A phrase that runs past `max_phrase_seconds` is finalised
where it stands, so no result waits on a speaker who never pauses. Transcriptions run one at a time
per stream, in order; an interim result that would only queue behind other work is skipped. Final
phrases are numbered in order: a `PhraseEnded` says a phrase's audio is cut and queued before its
`PhraseResult` (and, with `segments`, its `PhraseSegment`s as whisper.cpp decodes them) arrive, or a
`PhraseFailed` where its transcription could not be done.

`LiveService` opens a `LiveSession` per stream: it decodes the stream's bytes as they arrive (raw PCM
or a container), scores them for speech and transcribes phrases through a `LiveTranscriber`. Nothing here
knows about WebSockets: the route feeds bytes and control messages in and sends the events this emits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import numpy as np

from whisper_api.audio.stream import ContainerStream, PcmStream, RawFormat
from whisper_api.engine.catalog import ModelFile
from whisper_api.engine.types import DecodeOptions, Segment, Transcript
from whisper_api.engine.vad import FRAME_SAMPLES, VoiceActivity
from whisper_api.engine.whisper import SAMPLE_RATE
from whisper_api.errors import BusyError, ServiceError
from whisper_api.service.transcription import TranscriptionService

#: Consecutive speech frames (32 ms each) that start a phrase: a click or a cough is not speech.
_ONSET_FRAMES = 3
#: Audio kept after speech ends, so word edges are not clipped.
_PAD_SECONDS = 0.3
DEFAULT_ENDPOINTING_MS = 400
DEFAULT_PREFIX_PADDING_MS = 300
#: How long a handshake let in keeps its place before its stream opens. Accepting the socket takes
#: milliseconds; one that failed in between (the client left) gives its place back after this.
_ADMISSION_SECONDS = 10.0
#: When a client refused for the stream limit may try again: streams last as long as people talk.
_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class LiveOptions:
    interim_results: bool = False
    #: Silence (ms) that ends a phrase; None leaves phrase ends to Finalize, CloseStream and the length cap.
    endpointing_ms: int | None = DEFAULT_ENDPOINTING_MS
    vad_events: bool = False
    #: Silence (ms) after the last word before an UtteranceEnd event; None sends none.
    utterance_end_ms: int | None = None
    threshold: float = 0.5
    interim_every_seconds: float = 1.0
    max_phrase_seconds: float = 25.0
    #: Audio kept before speech starts (ms), so the first word's onset is not clipped.
    prefix_padding_ms: int = DEFAULT_PREFIX_PADDING_MS
    #: Emit each final phrase's segments (PhraseSegment) as they are decoded, before its result.
    segments: bool = False


@dataclass(frozen=True, slots=True)
class PhraseResult:
    """A phrase's transcription, its times in seconds from the start of the stream."""

    start: float
    duration: float
    #: None when there was no audio to transcribe (a Finalize with nothing new).
    transcript: Transcript | None
    is_final: bool
    speech_final: bool
    from_finalize: bool = False
    #: The final phrase this is, or (an interim result) the one it will become.
    phrase: int = 0


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    timestamp: float
    #: The number its final phrase will have.
    phrase: int = 0


@dataclass(frozen=True, slots=True)
class PhraseEnded:
    """A final phrase's audio is cut (seconds from the start of the stream) and queued for transcription."""

    phrase: int
    start: float
    end: float
    #: Silence ended it (endpointing, or the end of the stream), not Finalize or the length cap.
    speech_final: bool


@dataclass(frozen=True, slots=True)
class PhraseSegment:
    """A segment of a final phrase as whisper.cpp decodes it, its times from the start of the stream."""

    phrase: int
    segment: Segment


@dataclass(frozen=True, slots=True)
class PhraseFailed:
    """A phrase's transcription failed (a full queue, its deadline): the stream itself can go on."""

    phrase: int
    is_final: bool
    error: ServiceError


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    last_word_end: float


LiveEvent = PhraseResult | SpeechStarted | PhraseEnded | PhraseSegment | PhraseFailed | UtteranceEnd
Emit = Callable[[LiveEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Work:
    start: int
    end: int
    #: A copy: the stream's buffer moves on while this waits.
    samples: np.ndarray
    is_final: bool
    speech_final: bool
    from_finalize: bool
    phrase: int


class LiveTranscriber:
    """One live stream. `feed` audio as it arrives; `finalize` and `finish` flush; `close` abandons."""

    def __init__(
        self,
        service: TranscriptionService,
        model: ModelFile,
        options: DecodeOptions,
        live: LiveOptions,
        vad: VoiceActivity,
        emit: Emit,
    ) -> None:
        self._service = service
        self.configure(model, options, live)
        self._vad = vad
        self._emit = emit
        # All audio not yet finalised, from absolute sample `_base` on; `_scored` is where VAD is up to.
        self._audio = np.zeros(0, dtype=np.float32)
        self._base = 0
        self._scored = 0
        self._phrase_start: int | None = None  # set while a phrase is open
        self._onset = 0
        self._last_speech = 0
        self._last_interim = 0
        self._utterance_open = False
        #: The number the next final phrase gets.
        self._phrase = 0
        self._jobs: asyncio.Queue[_Work | UtteranceEnd | None] = asyncio.Queue()
        self._running = False
        self._worker = asyncio.ensure_future(self._work())
        self.failure: BaseException | None = None

    @property
    def owes_results(self) -> bool:
        """Whether transcriptions are queued or running: the client is waiting on the server."""
        return self._running or not self._jobs.empty()

    @property
    def received_seconds(self) -> float:
        return (self._base + len(self._audio)) / SAMPLE_RATE

    def configure(self, model: ModelFile, options: DecodeOptions, live: LiveOptions) -> None:
        """New settings for the audio from now on (and transcriptions not yet started)."""
        self._model = model
        # Timed words only where the caller's messages carry them (Deepgram's do; OpenAI's realtime ones
        # do not): they cost an alignment pass per phrase. Phrases are speech already, found by VAD.
        self._options = replace(options, speech_only=None)
        self._live = live

    async def feed(self, samples: np.ndarray) -> None:
        self._raise_failure()
        if len(samples) == 0:
            return
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        unscored = self._audio[self._scored - self._base :]
        whole = len(unscored) - len(unscored) % FRAME_SAMPLES
        if whole == 0:
            return
        probabilities = await asyncio.to_thread(self._vad.probabilities, unscored[:whole])
        for probability in probabilities:
            await self._frame(self._scored, float(probability))
            self._scored += FRAME_SAMPLES
        await self._maybe_interim()
        self._forget_silence()

    async def finalize(self) -> None:
        """Everything heard so far becomes a final result now (Deepgram's Finalize)."""
        self._raise_failure()
        end = self._base + len(self._audio)
        start = self._phrase_start if self._phrase_start is not None else end
        await self._queue(start, end, is_final=True, speech_final=False, from_finalize=True)
        self._close_phrase(end)
        self._scored = end
        self._vad.reset()

    def clear(self) -> None:
        """Forget the audio heard since the last final phrase: an open phrase is dropped untranscribed."""
        self._raise_failure()
        end = self._base + len(self._audio)
        if self._phrase_start is not None:
            self._phrase += 1  # its number was announced (SpeechStarted): the next phrase is another
        self._close_phrase(end)
        self._scored = end
        self._vad.reset()

    async def finish(self) -> None:
        """The stream has ended: finalise an open phrase and wait for every result to be sent."""
        if self._phrase_start is not None:
            end = self._base + len(self._audio)
            await self._queue(self._phrase_start, end, is_final=True, speech_final=True, from_finalize=False)
            self._close_phrase(end)
        self._jobs.put_nowait(None)
        await self._worker
        self._raise_failure()

    async def close(self) -> None:
        """Abandon the stream: queued work is dropped, running work is aborted."""
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker

    # -- voice activity ------------------------------------------------------------------------

    async def _frame(self, position: int, probability: float) -> None:
        live = self._live
        if probability >= live.threshold:
            self._onset += 1
            self._last_speech = position + FRAME_SAMPLES
            self._utterance_open = True
            if self._phrase_start is None and self._onset >= _ONSET_FRAMES:
                onset = position - (_ONSET_FRAMES - 1) * FRAME_SAMPLES
                self._phrase_start = max(self._base, onset - _samples(live.prefix_padding_ms / 1000))
                self._last_interim = position
                if live.vad_events:
                    await self._emit(SpeechStarted(onset / SAMPLE_RATE, self._phrase))
            return
        self._onset = 0
        silence = position + FRAME_SAMPLES - self._last_speech
        if (
            self._phrase_start is not None
            and live.endpointing_ms is not None
            and silence >= _samples(live.endpointing_ms / 1000)
        ):
            end = min(self._last_speech + _samples(_PAD_SECONDS), position + FRAME_SAMPLES)
            await self._queue(self._phrase_start, end, is_final=True, speech_final=True, from_finalize=False)
            self._close_phrase(end)
        if (
            self._utterance_open
            and live.utterance_end_ms is not None
            and silence >= _samples(live.utterance_end_ms / 1000)
        ):
            self._utterance_open = False
            # Queued behind the phrases it ends, so it follows their results (as Deepgram's does):
            # clients flush the words they gathered on it.
            self._jobs.put_nowait(UtteranceEnd(self._last_speech / SAMPLE_RATE))

    async def _maybe_interim(self) -> None:
        start = self._phrase_start
        if start is None:
            return
        if self._scored - start >= _samples(self._live.max_phrase_seconds):
            await self._queue(start, self._scored, is_final=True, speech_final=False, from_finalize=False)
            self._phrase_start = self._scored
            self._last_interim = self._scored
            self._drop_before(self._scored)
            return
        due = self._scored - self._last_interim >= _samples(self._live.interim_every_seconds)
        if self._live.interim_results and due and not self._running and self._jobs.empty():
            self._last_interim = self._scored
            await self._queue(start, self._scored, is_final=False, speech_final=False, from_finalize=False)

    def _close_phrase(self, end: int) -> None:
        self._phrase_start = None
        self._onset = 0
        # The audio up to `end` is spoken for; anything after it may begin the next phrase.
        self._drop_before(end)

    def _forget_silence(self) -> None:
        """Between phrases keep only the pre-roll a new phrase would start with."""
        if self._phrase_start is None:
            self._drop_before(self._scored - _samples(self._live.prefix_padding_ms / 1000))

    def _drop_before(self, position: int) -> None:
        if position > self._base:
            self._audio = self._audio[position - self._base :]
            self._base = position

    # -- transcription ---------------------------------------------------------------------------

    async def _queue(
        self, start: int, end: int, *, is_final: bool, speech_final: bool, from_finalize: bool
    ) -> None:
        samples = self._audio[max(start - self._base, 0) : max(end - self._base, 0)].copy()
        phrase = self._phrase
        if is_final:
            self._phrase += 1
            # Sent before the work is queued, so it comes before anything the transcription emits.
            await self._emit(PhraseEnded(phrase, start / SAMPLE_RATE, end / SAMPLE_RATE, speech_final))
        self._jobs.put_nowait(_Work(start, end, samples, is_final, speech_final, from_finalize, phrase))

    async def _work(self) -> None:
        try:
            while (work := await self._jobs.get()) is not None:
                if isinstance(work, UtteranceEnd):
                    await self._emit(work)
                    continue
                self._running = True
                offset = work.start / SAMPLE_RATE
                try:
                    transcript = await self._transcribe(work, offset)
                except ServiceError as error:
                    await self._emit(PhraseFailed(work.phrase, work.is_final, error))
                    continue
                finally:
                    self._running = False
                await self._emit(
                    PhraseResult(
                        start=offset,
                        duration=(work.end - work.start) / SAMPLE_RATE,
                        transcript=None if transcript is None else transcript.shifted(offset),
                        is_final=work.is_final,
                        speech_final=work.speech_final,
                        from_finalize=work.from_finalize,
                        phrase=work.phrase,
                    )
                )
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # reported to the route on its next call
            self.failure = error

    async def _transcribe(self, work: _Work, offset: float) -> Transcript | None:
        if len(work.samples) == 0:
            return None
        if not (work.is_final and self._live.segments):
            return await self._service.transcribe(self._model, work.samples, self._options)
        transcript = None
        async for item in await self._service.stream(self._model, work.samples, self._options):
            if isinstance(item, Segment):
                await self._emit(PhraseSegment(work.phrase, item.retimed(lambda t: t + offset)))
            else:
                transcript = item
        return transcript

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


class TooManyStreams(BusyError):
    """As many live streams are open as the server allows."""

    code = "too_many_streams"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The server has its limit of {limit} live streams open; retry after {_RETRY_AFTER_SECONDS} s.",
            retry_after=_RETRY_AFTER_SECONDS,
        )


class LiveService:
    """Opens live sessions on the transcription service's engine; they need its VAD model.

    Each session holds a Silero context and a decoder (a thread, for containers) for as long as its client
    keeps it open, so at most `max_streams` are open at once (None: no limit); `prepare` refuses the
    handshake of one more.
    """

    def __init__(self, transcription: TranscriptionService, *, max_streams: int | None = None) -> None:
        self._transcription = transcription
        self._engine = transcription.engine
        self._max_streams = max_streams
        self._open = 0
        #: When each handshake let in but whose session is not open yet was let in, oldest first: a
        #: burst of handshakes must not all pass before the first of them opens its session.
        self._admitted: deque[float] = deque()

    @property
    def available(self) -> bool:
        """Whether the Silero VAD model is installed: without it no phrase could be told from silence."""
        return self._engine.detects_speech

    async def prepare(self, model: ModelFile) -> None:
        """Load `model` (or refuse, as a full queue would) and hold a place for the stream before the
        client is told it is open; TooManyStreams when none is left."""
        await self._engine.prepare(model)
        now = time.monotonic()
        while self._admitted and now - self._admitted[0] > _ADMISSION_SECONDS:
            self._admitted.popleft()
        if self._max_streams is not None and self._open + len(self._admitted) >= self._max_streams:
            raise TooManyStreams(self._max_streams)
        self._admitted.append(now)

    def open(
        self, model: ModelFile, options: DecodeOptions, live: LiveOptions, raw: RawFormat | None, emit: Emit
    ) -> LiveSession:
        vad_model = self._engine.config.vad_model
        assert vad_model is not None, "a live session is opened only when the service is available"
        session = LiveSession(
            self._transcription, model, options, live, raw, VoiceActivity(vad_model), emit, self._closed
        )
        if self._admitted:
            self._admitted.popleft()
        self._open += 1
        return session

    def _closed(self) -> None:
        self._open -= 1


class LiveSession:
    """One stream's bytes in, its events out through `emit`. `push` bytes as they arrive; `finalize`
    (Deepgram's Finalize) and `finish` (the end of the stream) flush; `close` releases everything and
    is always called, after `finish` or instead of it."""

    def __init__(
        self,
        transcription: TranscriptionService,
        model: ModelFile,
        options: DecodeOptions,
        live: LiveOptions,
        raw: RawFormat | None,
        vad: VoiceActivity,
        emit: Emit,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """`on_close` is called once the session has let go of everything."""
        self._on_close = on_close
        # A stream is held to the same duration limit as an upload, counted as it is decoded.
        self._limit = transcription.limits.max_audio_seconds
        self._raw = raw
        self._decoder: PcmStream | ContainerStream = (
            PcmStream(raw, max_seconds=self._limit) if raw else ContainerStream(max_seconds=self._limit)
        )
        self._vad = vad
        self._transcriber = LiveTranscriber(transcription, model, options, live, vad, emit)

    @property
    def owes_results(self) -> bool:
        """Whether transcriptions are queued or running: a quiet client is waiting on the server."""
        return self._transcriber.owes_results

    @property
    def received_seconds(self) -> float:
        return self._transcriber.received_seconds

    async def push(self, data: bytes) -> None:
        await self._transcriber.feed(self._decoder.push(data))

    async def update(
        self, model: ModelFile, options: DecodeOptions, live: LiveOptions, raw: RawFormat
    ) -> None:
        """New settings for the audio pushed from now on; raw audio may change its format (the old
        format's last samples are kept: its resampler holds a few)."""
        assert isinstance(self._decoder, PcmStream), "a container names its own format"
        if raw != self._raw:
            await self._transcriber.feed(self._decoder.finish())
            # The stream's duration limit holds across formats.
            counted = self._transcriber.received_seconds
            self._decoder, self._raw = PcmStream(raw, max_seconds=self._limit, counted=counted), raw
        self._transcriber.configure(model, options, live)

    def clear(self) -> None:
        """Drop the audio not yet part of a final phrase."""
        self._transcriber.clear()

    async def finalize(self) -> None:
        if isinstance(self._decoder, ContainerStream):  # its decoding lags what was sent
            await self._transcriber.feed(await asyncio.to_thread(self._decoder.flush))
        await self._transcriber.finalize()

    async def finish(self) -> None:
        await self._transcriber.feed(await asyncio.to_thread(self._decoder.finish))
        await self._transcriber.finish()

    async def close(self) -> None:
        try:
            await self._transcriber.close()
            if isinstance(self._decoder, ContainerStream):
                self._decoder.close()
            self._vad.close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()
