"""Deepgram's /v1/listen: pre-recorded audio (POST) and live streams (WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid

import msgspec
import numpy as np
from litestar import MediaType, Request, Response, WebSocket, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.openapi import ResponseSpec

from whisper_api.accounts.service import InsufficientBalance, Meter
from whisper_api.errors import InvalidInput
from whisper_api.http import billing, deepgram, handshake
from whisper_api.http.auth import authenticate, offers_token_subprotocol, require_api_key
from whisper_api.http.disconnect import ClientDisconnected, until_disconnected
from whisper_api.http.errors import ApiError, DeepgramError, bad_request, to_api_error
from whisper_api.http.json_input import decode_json
from whisper_api.http.listen_callbacks import Accepted
from whisper_api.http.observability import CLIENT_CLOSED_REQUEST, request_usage
from whisper_api.http.openapi import ListenOperation
from whisper_api.http.responses import BEARER_OR_TOKEN, TEXT, TRANSCRIBING, VTT, answering_also, errors
from whisper_api.http.uploads import MAX_JSON_BYTES, read_body
from whisper_api.service import formats
from whisper_api.service.fetch import FetchError, FetchPolicy, check_destination, fetch
from whisper_api.service.live import (
    LiveEvent,
    LiveService,
    LiveSession,
    PhraseFailed,
    PhraseResult,
    SpeechStarted,
    UtteranceEnd,
)
from whisper_api.service.transcription import TranscriptionService
from whisper_api.service.types import SAMPLE_RATE, ModelFile, ModelNotFound, Transcript

#: Deepgram's close codes: no audio within the timeout (NET-0001), undecodable data (DATA-0000).
CLOSE_IDLE = 1011
CLOSE_BAD_DATA = 1008
#: The balance ran out mid-stream: a policy close, with seed 004's message as the reason.
CLOSE_PAYMENT = 1008


class UrlSource(msgspec.Struct, forbid_unknown_fields=True):
    url: str


def listen_model(service: TranscriptionService, name: str | None) -> ModelFile:
    """A whisper model by name; Deepgram's own model names (nova-3, enhanced...) mean the default one,
    and its whisper names (whisper-base) the whisper model of that size."""
    try:
        return service.model(name)
    except ModelNotFound:
        assert name is not None  # the default model is missing: nothing to fall back on
        if name.startswith("whisper-"):
            return service.model(name.removeprefix("whisper-"))
        if name.split("-")[0] in deepgram.DEEPGRAM_MODELS:
            return service.model(None)
        raise


@post(
    "/v1/listen",
    status_code=200,
    guards=[require_api_key],
    security=BEARER_OR_TOKEN,
    summary="Transcribe audio (Deepgram-compatible)",
    operation_class=answering_also(TEXT, VTT, base=ListenOperation),
    responses={
        200: ResponseSpec(
            deepgram.PrerecordedResponse | Accepted,  # type: ignore[arg-type]  # a union: documented as anyOf
            description="Deepgram's response; subtitles with `response_format=srt` (as text/plain) or vtt; "
            'with `callback`, `{"request_id": ...}` at once and the response POSTed to the callback.',
            generate_examples=False,
        ),
        **errors(*TRANSCRIBING, body=DeepgramError),
    },
)
async def listen(request: Request, service: TranscriptionService) -> Response:
    query = deepgram.parse_listen_query(request.query_params.dict())
    model = listen_model(service, query.model)
    service.check(model, query.options)
    if query.callback is not None:
        await _check_callback(query.callback, request.app.state.fetch_policy)
    is_json = request.headers.get("content-type", "").startswith("application/json")
    body = await read_body(request, MAX_JSON_BYTES if is_json else request.app.state.max_upload_bytes)
    if is_json:
        try:
            source = decode_json(body, type=UrlSource)
        except msgspec.DecodeError as error:
            raise bad_request(
                f'A JSON body must be {{"url": "https://..."}} ({error}).', param="url", code="invalid_url"
            ) from None
        body = await fetch(source.url, request.app.state.fetch_policy)
    usage = request_usage(request.scope)
    samples = await service.decode(body, usage, query.raw)
    window, offset = _cropped(samples, query)
    charge = await billing.reserve(
        request, surface="listen", model=model.id, audio_seconds=len(window) / SAMPLE_RATE
    )
    request_id, sha256 = request.scope["state"]["request_id"], hashlib.sha256(body).hexdigest()

    def answer(transcript: Transcript) -> deepgram.PrerecordedResponse:
        return deepgram.prerecorded(
            transcript,
            request_id=request_id,
            sha256=sha256,
            model_id=model.id,
            duration=len(samples) / SAMPLE_RATE,
            query=query,
        )

    if query.callback is not None:

        async def transcribed() -> bytes:
            async with charge.settled():
                transcript = await service.transcribe(model, window, query.options, usage)
            return msgspec.json.encode(answer(transcript.shifted(offset)))

        request.app.state.listen_callbacks.start(query.callback, request_id, transcribed)
        return Response(Accepted(request_id=request_id), media_type=MediaType.JSON)
    try:
        async with charge.settled():
            transcript = await until_disconnected(
                request, service.transcribe(model, window, query.options, usage)
            )
    except ClientDisconnected:
        return Response(b"", status_code=CLIENT_CLOSED_REQUEST)
    transcript = transcript.shifted(offset)
    if query.response_format == "srt":
        return Response(formats.to_srt(transcript, query.subtitles), media_type=TEXT)
    if query.response_format == "vtt":
        return Response(formats.to_vtt(transcript, query.subtitles), media_type=VTT)
    if query.response_format == "tsv":
        return Response(formats.to_tsv(transcript), media_type=TEXT)
    return Response(answer(transcript), media_type=MediaType.JSON)


async def _check_callback(url: str, policy: FetchPolicy) -> None:
    """A callback URL the server will not POST to is refused now, not found out after the work."""
    try:
        await check_destination(url, policy)
    except FetchError as error:
        raise InvalidInput(f"callback: {error.message}", param="callback", code=error.code) from None


def _cropped(samples: np.ndarray, query: deepgram.ListenRequest) -> tuple[np.ndarray, float]:
    """The `start`/`duration` window of `samples` (milliseconds), and where it starts in seconds."""
    if query.start_ms is None and query.duration_ms is None:
        return samples, 0.0
    first = round((query.start_ms or 0) * SAMPLE_RATE / 1000)
    if first >= len(samples):
        raise bad_request(
            f"'start' ({query.start_ms} ms) is past the end of the audio "
            f"({len(samples) / SAMPLE_RATE:.2f} s).",
            param="start",
        )
    last = (
        len(samples) if query.duration_ms is None else first + round(query.duration_ms * SAMPLE_RATE / 1000)
    )
    return samples[first:last], first / SAMPLE_RATE


# -- live ----------------------------------------------------------------------------------------


class _Control(msgspec.Struct):
    type: str


@websocket("/v1/listen")
async def listen_live(socket: WebSocket, service: TranscriptionService, live: LiveService) -> None:
    """Deepgram's live streaming protocol: binary audio in, Results messages out."""
    request_id = str(uuid.uuid4())
    state = socket.app.state
    try:
        try:
            principal = await authenticate(socket)
        except ApiError:
            raise ApiError(401, "Incorrect or missing API key.", code="invalid_auth") from None
        await billing.check_first_second(socket, principal)
        query = deepgram.parse_listen_query(socket.query_params.dict())
        if query.callback is not None:
            raise bad_request(
                "'callback' is for pre-recorded audio: a live stream's results come over the socket.",
                param="callback",
                code="unsupported_value",
            )
        model = listen_model(service, query.model)
        service.check(model, query.options)
        if not live.available:
            raise ApiError(
                503,
                "Live streaming needs the Silero VAD model; run `whisper-api models pull silero-v5.1.2`.",
                type="server_error",
                code="vad_unavailable",
            )
        await live.prepare(model)
    except Exception as error:
        await _refuse(socket, to_api_error(error), request_id)
        return
    subprotocol = "token" if offers_token_subprotocol(socket) else None
    await socket.accept(subprotocols=subprotocol, headers={"dg-request-id": request_id})
    meter = await billing.meter(socket, surface="listen.live", model=model.id)
    await _LiveStream(socket, live, model, query, request_id, state.live_idle_seconds, meter).run()


async def _refuse(socket: WebSocket, error: ApiError, request_id: str) -> None:
    """Answer the handshake with an HTTP error, as Deepgram does (a plain close where the server
    cannot send one)."""
    body = msgspec.json.encode(error.deepgram_body(request_id))
    headers = {**error.headers, "dg-request-id": request_id}
    await handshake.refuse(socket, error.status, body, error.body.error.message, headers)


class _LiveStream:
    """Deepgram's messages in and out of one accepted socket; the live session does the work."""

    def __init__(
        self,
        socket: WebSocket,
        live: LiveService,
        model: ModelFile,
        query: deepgram.ListenRequest,
        request_id: str,
        idle_seconds: float,
        meter: Meter,
    ) -> None:
        self.socket = socket
        #: Charges each second of audio as it arrives; the stream ends when the balance cannot pay.
        self.meter = meter
        self.model = model
        self.query = query
        self.request_id = request_id
        self.idle_seconds = idle_seconds
        self.session: LiveSession = live.open(model, query.options, query.live, query.raw, self._emit)

    async def run(self) -> None:
        try:
            await self._send(deepgram.stream_metadata(self.request_id, self.model.id, 0.0, self.query))
            if await self._receive_until_closed():
                await self.session.finish()
                await self._send(
                    deepgram.stream_metadata(
                        self.request_id, self.model.id, self.session.received_seconds, self.query
                    )
                )
                await self.socket.close(1000)
        except InvalidInput as error:  # the client's data: Deepgram's bad-data close
            await self._fail(CLOSE_BAD_DATA, f"DATA-0000: {error.message}")
        except InsufficientBalance as error:
            await self._fail(CLOSE_PAYMENT, error.message)
        except (WebSocketDisconnect, ClientDisconnected, OSError):
            # The client left (uvicorn raises an OSError on sending to a closed socket: SDKs close right
            # after CloseStream): nothing to send, the work is dropped below.
            pass
        except Exception as error:
            api_error = to_api_error(error)
            await self._fail(1011, api_error.body.error.message)
        finally:
            await self.session.close()
            await self.meter.close()

    async def _receive_until_closed(self) -> bool:
        """Handle client messages; True when the client asked to close (CloseStream), False when it left
        or went quiet for too long."""
        while True:
            try:
                message = await asyncio.wait_for(self.socket.receive(), self.idle_seconds)
            except TimeoutError:
                if self.session.owes_results:  # the quiet is ours, not the client's
                    continue
                await self._fail(
                    CLOSE_IDLE,
                    f"NET-0001: no audio or KeepAlive received within {self.idle_seconds:g} seconds",
                )
                return False
            if message["type"] == "websocket.disconnect":
                return False
            data = message.get("bytes")
            if isinstance(data, bytes):
                if not data:  # Deepgram's older clients end a stream with an empty binary message
                    return True
                before = self.session.received_seconds
                await self.session.push(data)
                await self.meter.add(self.session.received_seconds - before)
                continue
            text = message.get("text")
            if await self._control(text if isinstance(text, str) else ""):
                return True

    async def _control(self, text: str) -> bool:
        """Act on a text message; True for CloseStream."""
        try:
            kind = decode_json(text, type=_Control).type
        except msgspec.DecodeError:  # ValidationError is a DecodeError
            await self._send(
                deepgram.ErrorMessage(
                    description='Text messages must be JSON like {"type": "KeepAlive"}.',
                    message="invalid control message",
                )
            )
            return False
        if kind == "KeepAlive":
            return False
        if kind == "CloseStream":
            return True
        if kind == "Finalize":
            await self.session.finalize()
            return False
        await self._send(
            deepgram.ErrorMessage(
                description=f"Unknown message type {kind!r}; expected KeepAlive, Finalize or CloseStream.",
                message="unknown control message",
            )
        )
        return False

    async def _emit(self, event: LiveEvent) -> None:
        if isinstance(event, PhraseResult):
            message: msgspec.Struct = deepgram.live_results(
                event.transcript,
                start=event.start,
                duration=event.duration,
                is_final=event.is_final,
                speech_final=event.speech_final,
                from_finalize=event.from_finalize,
                request_id=self.request_id,
                model_id=self.model.id,
            )
        elif isinstance(event, SpeechStarted):
            message = deepgram.SpeechStartedMessage(channel=[0], timestamp=round(event.timestamp, 3))
        elif isinstance(event, UtteranceEnd):
            message = deepgram.UtteranceEndMessage(
                channel=[0, 1], last_word_end=round(event.last_word_end, 3)
            )
        elif isinstance(event, PhraseFailed):  # Deepgram has no message for it: the stream ends (1011)
            raise event.error
        else:  # Deepgram has no message for a phrase being cut: its Results say it
            return
        await self._send(message)

    async def _send(self, message: msgspec.Struct) -> None:
        await self.socket.send_text(msgspec.json.encode(message).decode())

    async def _fail(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._send(deepgram.ErrorMessage(description=reason, message=reason.split(":")[0]))
            await self.socket.close(code, handshake.close_reason(reason))
