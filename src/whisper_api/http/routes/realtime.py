"""OpenAI's realtime transcription: WebSocket /v1/realtime?intent=transcription.

The client appends base64 audio; Silero VAD (the live service's, as on /v1/listen) finds where each
turn starts and ends, or the client commits the buffer itself; each committed turn becomes a user item
whose transcription arrives as deltas (one per segment whisper.cpp decodes) and a completed event.
A client event this cannot act on is answered with an `error` event and the session goes on, as
OpenAI's does; the connection closes only when the client leaves or the session cannot continue.

A browser must not hold the real key: the app's server mints an ephemeral client secret
(POST /v1/realtime/client_secrets, GA's, or /v1/realtime/transcription_sessions, the beta's) with the
session's settings, and the browser opens the socket with it. The secret is a stored, hashed, expiring
record in the accounts store (so every replica on the database knows it, and it dies with the key that
minted it); it acts as that key, and only here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib

import msgspec
from litestar import Request, WebSocket, post, websocket
from litestar.exceptions import WebSocketDisconnect

from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountService, InsufficientBalance, Meter
from whisper_api.errors import InvalidInput, ServiceError
from whisper_api.http import billing, handshake, realtime
from whisper_api.http.auth import (
    authenticate,
    offers_token_subprotocol,
    redeem_client_secret,
    require_api_key,
)
from whisper_api.http.errors import ApiError, to_api_error
from whisper_api.http.json_input import decode_json
from whisper_api.http.openapi import ClientSecretOperation, TranscriptionSessionOperation
from whisper_api.http.responses import errors
from whisper_api.http.schemas import languages, logprobs, segment_logprobs
from whisper_api.http.uploads import MAX_JSON_BYTES, read_body
from whisper_api.service.live import (
    LiveEvent,
    LiveService,
    LiveSession,
    PhraseEnded,
    PhraseFailed,
    PhraseResult,
    PhraseSegment,
    SpeechStarted,
)
from whisper_api.service.transcription import TranscriptionService
from whisper_api.service.types import ModelFile

#: What the server says when it ends a session it cannot continue (RFC 6455's internal error).
CLOSE_ERROR = 1011
_TRANSCRIPTION = "transcription"
#: What usage records call this door.
SURFACE = "realtime"
_CLIENT_EVENTS = (
    "session.update",
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)


@websocket("/v1/realtime")
async def realtime_transcription(socket: WebSocket, service: TranscriptionService, live: LiveService) -> None:
    """OpenAI's realtime API for transcription sessions, in its beta and GA event shapes."""
    try:
        minted = await redeem_client_secret(socket)
        settings = realtime.SessionSettings() if minted is None else realtime.restored(minted)
        principal = await authenticate(socket)
        await billing.check_first_second(socket, principal)
        intent = socket.query_params.get("intent", _TRANSCRIPTION)
        if intent != _TRANSCRIPTION:
            raise ApiError(
                400,
                "This server runs transcription sessions only: intent must be 'transcription', "
                f"not {intent!r}.",
                param="intent",
                code="invalid_value",
            )
        if not live.available:
            raise ApiError(
                503,
                "Realtime transcription needs the Silero VAD model; "
                "run `whisper-api models pull silero-v5.1.2`.",
                type="server_error",
                code="vad_unavailable",
            )
        model = _checked(service, settings)
        await live.prepare(model)
    except Exception as error:
        api_error = to_api_error(error)
        body = msgspec.json.encode(api_error.body)
        message = api_error.body.error.message
        await handshake.refuse(socket, api_error.status, body, message, api_error.headers)
        return
    # The beta dialect is asked for by a header (SDKs) or, from browsers, a subprotocol.
    offered = [p.strip() for p in socket.headers.get("sec-websocket-protocol", "").split(",")]
    beta = "realtime=v1" in socket.headers.get("openai-beta", "") or "openai-beta.realtime-v1" in offered
    # A browser that offered subprotocols fails a handshake that accepts none of them.
    subprotocol = "realtime" if "realtime" in offered else None
    if subprotocol is None and offers_token_subprotocol(socket):
        subprotocol = "token"
    await socket.accept(subprotocols=subprotocol)
    meter = await billing.meter(socket, surface=SURFACE, model=model.id)
    await _Session(socket, service, live, model, settings, "beta" if beta else "ga", meter).run()


@post(
    "/v1/realtime/client_secrets",
    guards=[require_api_key],
    status_code=200,
    responses=errors(400, 401, 404, 413),
    operation_class=ClientSecretOperation,
    summary="Create an ephemeral client secret for a realtime transcription session",
)
async def create_client_secret(
    request: Request, service: TranscriptionService, principal: Principal
) -> realtime.ClientSecretCreated:
    """OpenAI's GA client secret: `value` opens /v1/realtime (and nothing else) until `expires_at`
    (`expires_after.seconds`, 10 to 7200; 600 by default), as the key that made it, with `session`'s
    settings."""
    settings, session_id, secret = await _mint(request, service, principal, "ga")
    session = realtime.session_out(settings, session_id, "ga")
    assert isinstance(session, realtime.GaSessionOut)
    return realtime.ClientSecretCreated(secret.value, secret.expires_at, session)


@post(
    "/v1/realtime/transcription_sessions",
    guards=[require_api_key],
    status_code=200,
    responses=errors(400, 401, 404, 413),
    operation_class=TranscriptionSessionOperation,
    summary="Create a realtime transcription session and its ephemeral client secret (beta)",
)
async def create_transcription_session(
    request: Request, service: TranscriptionService, principal: Principal
) -> realtime.BetaSessionOut:
    """The beta's: the session, its secret under `client_secret` (one minute unless
    `client_secret.expires_at.seconds` says otherwise)."""
    settings, session_id, secret = await _mint(request, service, principal, "beta")
    session = realtime.session_out(settings, session_id, "beta", secret)
    assert isinstance(session, realtime.BetaSessionOut)
    return session


async def _mint(
    request: Request, service: TranscriptionService, principal: Principal, dialect: realtime.Dialect
) -> tuple[realtime.SessionSettings, str, realtime.ClientSecretOut]:
    """The settings the body asks for, checked as a session update's are, and a secret that opens a
    session with them."""
    settings, seconds = realtime.minted(await read_body(request, MAX_JSON_BYTES, param=None), dialect)
    try:
        _checked(service, settings)
    except ServiceError as error:  # named where the request has it, as a session update's are
        if error.param:
            error.param = (
                f"{realtime.transcription_param(dialect, realtime.MINTED_AT[dialect])}.{error.param}"
            )
        raise
    accounts: AccountService = request.app.state.accounts
    session_id = realtime.new_id("sess")
    secret = await accounts.mint_client_secret(
        principal, session_id, realtime.stored(settings), seconds=seconds
    )
    return settings, session_id, realtime.ClientSecretOut(secret.value, int(secret.expires_at))


def _checked(service: TranscriptionService, settings: realtime.SessionSettings) -> ModelFile:
    """The model `settings` ask for, once the service can run them (a ServiceError if not)."""
    model = service.model(settings.model)
    service.check(model, settings.decode_options())
    return model


class _Session:
    """One transcription session: client events in, server events out; the live session does the work."""

    def __init__(
        self,
        socket: WebSocket,
        service: TranscriptionService,
        live: LiveService,
        model: ModelFile,
        settings: realtime.SessionSettings,
        dialect: realtime.Dialect,
        meter: Meter,
    ) -> None:
        self.socket = socket
        #: Charges each second of audio as it arrives; the session ends when the balance cannot pay.
        self.meter = meter
        self.service = service
        self.live = live
        self.dialect = dialect
        self.id = realtime.new_id("sess")
        #: A client secret's settings, or OpenAI's defaults.
        self.settings = settings
        self.stream: LiveSession = live.open(
            model,
            self.settings.decode_options(),
            self.settings.live_options(),
            self.settings.raw(),
            self._emit,
        )
        #: Item ids by live phrase number; a phrase's id is made when it is first spoken of.
        self.items: dict[int, str] = {}
        self.deltas: dict[int, list[str]] = {}
        self.last_item: str | None = None
        #: Where (seconds into the stream) the audio not yet committed starts.
        self.committed = 0.0

    async def run(self) -> None:
        try:
            await self._send(realtime.session_event(self.settings, self.id, self.dialect, created=True))
            while True:
                message = await self.socket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if not isinstance(text, str):
                    await self._error(
                        "Binary messages are not part of the protocol: send audio as "
                        "input_audio_buffer.append events with base64 audio.",
                        code="invalid_message",
                    )
                    continue
                await self._handle(text)
        except (InvalidInput, InsufficientBalance) as error:  # too long a session, or an unpaid one
            detail = to_api_error(error).body.error
            await self._fail(handshake.CLOSE_POLICY, detail.message, detail.code, detail.type)
        except (WebSocketDisconnect, OSError):
            pass  # the client left: the work is dropped below
        except Exception as error:
            api_error = to_api_error(error).body.error
            await self._fail(CLOSE_ERROR, api_error.message, api_error.code, api_error.type)
        finally:
            await self.stream.close()
            await self.meter.close()

    async def _handle(self, text: str) -> None:
        try:
            event = decode_json(text, type=realtime.ClientEvent)
        except msgspec.DecodeError as error:
            await self._error(
                f"The message is not a JSON event object with a string 'type' ({error}).", code="invalid_json"
            )
            return
        try:
            await self._act(event, text.encode())
        except realtime.InvalidEvent as error:
            await self._error(error.message, code=error.code, param=error.param, event_id=event.event_id)

    async def _act(self, event: realtime.ClientEvent, raw: bytes) -> None:
        match event.type:
            case "input_audio_buffer.append":
                before = self.stream.received_seconds
                await self.stream.push(_audio(raw))
                await self.meter.add(self.stream.received_seconds - before)
            case "input_audio_buffer.commit":
                await self._commit()
            case "input_audio_buffer.clear":
                self.stream.clear()
                self.committed = self.stream.received_seconds
                await self._send(realtime.Cleared())
            case "session.update" | "transcription_session.update":
                # A client that speaks the other dialect is answered in it from now on.
                self.dialect = "beta" if event.type.startswith("transcription_session") else "ga"
                await self._update(raw, event.event_id)
            case _:
                raise realtime.InvalidEvent(
                    f"Invalid value: {event.type!r}. A transcription session takes "
                    + ", ".join(repr(name) for name in _CLIENT_EVENTS)
                    + ".",
                    param="type",
                )

    async def _update(self, raw: bytes, event_id: str | None) -> None:
        settings = realtime.updated(self.settings, raw, self.dialect)
        try:
            model = _checked(self.service, settings)
            await self.live.prepare(model)
        except Exception as error:  # the model or language asked for: the session keeps its settings
            detail = to_api_error(error).body.error
            param = f"{realtime.transcription_param(self.dialect)}.{detail.param}" if detail.param else None
            await self._error(
                detail.message, code=detail.code, param=param, event_id=event_id, type=detail.type
            )
            return
        await self.stream.update(model, settings.decode_options(), settings.live_options(), settings.raw())
        if model.id != self.meter.model:  # usage is recorded per model
            await self.meter.close()
            self.meter = await billing.meter(self.socket, surface=SURFACE, model=model.id)
        self.settings = settings
        await self._send(realtime.session_event(settings, self.id, self.dialect, created=False))

    async def _commit(self) -> None:
        uncommitted_ms = (self.stream.received_seconds - self.committed) * 1000
        if uncommitted_ms < realtime.MIN_COMMIT_MS:
            raise realtime.InvalidEvent(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{realtime.MIN_COMMIT_MS}ms of audio, but buffer only has {uncommitted_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        await self.stream.finalize()

    # -- server events -------------------------------------------------------------------------

    def _item(self, phrase: int) -> str:
        return self.items.setdefault(phrase, realtime.new_id("item"))

    async def _emit(self, event: LiveEvent) -> None:
        if isinstance(event, SpeechStarted):
            padding = self.settings.turn_detection.prefix_padding_ms if self.settings.turn_detection else 0
            start_ms = max(0, round(event.timestamp * 1000) - padding)
            await self._send(
                realtime.SpeechStarted(audio_start_ms=start_ms, item_id=self._item(event.phrase))
            )
        elif isinstance(event, PhraseEnded):
            item_id = self._item(event.phrase)
            if event.speech_final and self.settings.turn_detection is not None:
                await self._send(
                    realtime.SpeechStopped(audio_end_ms=round(event.end * 1000), item_id=item_id)
                )
            await self._send(realtime.Committed(item_id=item_id, previous_item_id=self.last_item))
            await self._send(realtime.item_event(item_id, self.last_item, self.dialect))
            self.last_item, self.committed = item_id, max(self.committed, event.end)
        elif isinstance(event, PhraseSegment):
            said = self.deltas.setdefault(event.phrase, [])
            delta = event.segment.text if said else event.segment.text.lstrip()
            if delta:
                said.append(delta)
                await self._send(
                    realtime.TranscriptionDelta(
                        item_id=self._item(event.phrase),
                        delta=delta,
                        logprobs=segment_logprobs(event.segment) if self.settings.logprobs else None,
                    )
                )
        elif isinstance(event, PhraseFailed) and event.is_final:
            # That turn is lost, not the session: OpenAI's answer to a transcription that failed.
            self.deltas.pop(event.phrase, None)
            detail = to_api_error(event.error).body.error
            error = realtime.ErrorDetail(detail.message, detail.type, detail.code, detail.param, None)
            await self._send(realtime.TranscriptionFailed(item_id=self.items.pop(event.phrase), error=error))
        elif isinstance(event, PhraseResult) and event.is_final:
            transcript = event.transcript
            await self._send(
                realtime.TranscriptionCompleted(
                    item_id=self.items.pop(event.phrase),
                    # As on OpenAI's streams: the transcript is what the deltas add up to.
                    transcript="".join(self.deltas.pop(event.phrase, [])),
                    usage=realtime.DurationUsage(seconds=round(event.duration, 3)),
                    logprobs=logprobs(transcript) if self.settings.logprobs and transcript else None,
                    languages=languages(transcript) if transcript else None,
                )
            )

    async def _send(self, event: realtime.ServerEvent) -> None:
        await self.socket.send_text(msgspec.json.encode(event).decode())

    async def _error(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        event_id: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        await self._send(
            realtime.ErrorEvent(error=realtime.ErrorDetail(message, type, code, param, event_id))
        )

    async def _fail(
        self, close_code: int, message: str, code: str | None, type: str = "invalid_request_error"
    ) -> None:
        with contextlib.suppress(Exception):
            await self._error(message, code=code, type=type)
            await self.socket.close(close_code, handshake.close_reason(message))


def _audio(raw: bytes) -> bytes:
    try:
        encoded = decode_json(raw, type=realtime.AppendEvent).audio
    except msgspec.DecodeError as error:
        raise realtime.InvalidEvent(f"Invalid event: {error}", param="audio") from None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise realtime.InvalidEvent(
            "Invalid 'audio': expected base64-encoded audio bytes.", param="audio"
        ) from None
