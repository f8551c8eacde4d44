"""OpenAI's realtime transcription protocol (WebSocket /v1/realtime?intent=transcription): its events
and the session settings they carry, mapped onto the live service's.

Two dialects exist. The beta one (clients send `OpenAI-Beta: realtime=v1`) configures the session with
`transcription_session.update` and is answered `transcription_session.created`/`.updated`; the GA one
uses `session.update` with `session.type = "transcription"` and `session.created`/`.updated`, its audio
settings nested under `audio.input`. Updates are partial: a field left out keeps its value, `null`
turns a setting off. The session the server echoes is the one in effect: settings this service has no
equivalent of (noise reduction, response creation, semantic VAD's eagerness) come back as what runs
instead, never silently as asked.

A session may also be configured before its socket opens: an app's server mints an ephemeral client
secret with the session's settings (`POST /v1/realtime/client_secrets`, or the beta's
`/v1/realtime/transcription_sessions`), parsed here as an update's are, and the socket opened with that
secret starts with them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from whisper_api.audio.stream import RAW_SAMPLE_RATES, RawEncoding, RawFormat
from whisper_api.engine.types import DecodeOptions
from whisper_api.errors import InvalidInput
from whisper_api.http.forms import MAX_PROMPT_CHARS, chosen_language, hinted_prompt
from whisper_api.http.json_input import decode_json
from whisper_api.http.schemas import Language, Logprob
from whisper_api.service.live import LiveOptions

T = TypeVar("T")
Dialect = Literal["beta", "ga"]
BetaFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
#: What the live service decodes each format as.
_ENCODINGS: dict[BetaFormat, RawEncoding] = {"pcm16": "linear16", "g711_ulaw": "mulaw", "g711_alaw": "alaw"}
#: OpenAI's input audio: 16-bit PCM at 24 kHz, or G.711 at telephony's 8 kHz.
PCM_RATE = 24_000
G711_RATE = 8_000
LOGPROBS = "item.input_audio_transcription.logprobs"
#: OpenAI refuses to commit less audio than this.
MIN_COMMIT_MS = 100
MAX_PADDING_MS = 10_000
MAX_SILENCE_MS = 60_000
#: OpenAI's bounds on a client secret's life (`expires_after.seconds`), and its defaults: ten minutes for
#: GA's client secrets, one for the beta's transcription sessions.
MIN_SECRET_SECONDS, MAX_SECRET_SECONDS = 10, 7200
SECRET_SECONDS: dict[Dialect, int] = {"ga": 600, "beta": 60}
#: Where the session is in each dialect's request for a client secret: GA's has it under `session`, the
#: beta's is the session.
MINTED_AT: dict[Dialect, str] = {"ga": "session", "beta": ""}


class InvalidEvent(InvalidInput):
    """A client event (or a client secret's session) this cannot act on: on the socket, answered with an
    `error` event and the session goes on; over HTTP, a 400."""

    code = "invalid_value"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


# -- the session's settings ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vad:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a transcription session runs with; OpenAI's defaults."""

    format: BetaFormat = "pcm16"
    rate: int = PCM_RATE
    #: As the client named it; None is the default model.
    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    #: None: the client commits the audio itself.
    turn_detection: Vad | None = Vad()
    logprobs: bool = False

    def raw(self) -> RawFormat:
        return RawFormat(_ENCODINGS[self.format], self.rate)

    def decode_options(self) -> DecodeOptions:
        return DecodeOptions(language=self.language, prompt=self.prompt)

    def live_options(self) -> LiveOptions:
        vad = self.turn_detection
        if vad is None:  # Silero still finds where speech starts, so silence before it is not transcribed
            return LiveOptions(endpointing_ms=None, segments=True)
        return LiveOptions(
            endpointing_ms=vad.silence_duration_ms,
            vad_events=True,
            threshold=vad.threshold,
            prefix_padding_ms=vad.prefix_padding_ms,
            segments=True,
        )


# -- client events ---------------------------------------------------------------------------------


class ClientEvent(msgspec.Struct):
    type: str
    event_id: str | None = None


class AppendEvent(msgspec.Struct):
    audio: str


class TurnDetection(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: Annotated[float, Meta(ge=0, le=1)] | None = None
    prefix_padding_ms: Annotated[int, Meta(ge=0, le=MAX_PADDING_MS)] | None = None
    silence_duration_ms: Annotated[int, Meta(ge=1, le=MAX_SILENCE_MS)] | None = None
    # Not for transcription sessions (OpenAI's words), or semantic VAD's: answered as not in effect.
    create_response: bool | None = None
    interrupt_response: bool | None = None
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    idle_timeout_ms: int | None = None


class NoiseReduction(msgspec.Struct):
    type: str | None = None
    strength: float | None = None


Prompt = Annotated[str, Meta(max_length=MAX_PROMPT_CHARS)]


class Transcription(msgspec.Struct, forbid_unknown_fields=True):
    model: str | None = None
    language: str | None = None
    prompt: Prompt | None = None
    # GA only
    keywords: list[Prompt] | None = None
    languages: list[str] | None = None
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None


class ExpiresAfter(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Annotated[int, Meta(ge=MIN_SECRET_SECONDS, le=MAX_SECRET_SECONDS)]
    anchor: Literal["created_at"] = "created_at"


class BetaClientSecret(msgspec.Struct):
    expires_at: ExpiresAfter | None = None


class BetaSession(msgspec.Struct, forbid_unknown_fields=True):
    input_audio_format: BetaFormat | UnsetType = UNSET
    input_audio_transcription: Transcription | UnsetType | None = UNSET
    turn_detection: TurnDetection | UnsetType | None = UNSET
    input_audio_noise_reduction: NoiseReduction | UnsetType | None = UNSET
    include: list[str] | UnsetType | None = UNSET
    modalities: list[Literal["text", "audio"]] | UnsetType | None = UNSET
    #: Only for minting one (POST /v1/realtime/transcription_sessions); an update leaves it alone.
    client_secret: BetaClientSecret | UnsetType | None = UNSET


class AudioFormat(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: Annotated[int, Meta(ge=RAW_SAMPLE_RATES[0], le=RAW_SAMPLE_RATES[1])] | None = None


class AudioInput(msgspec.Struct, forbid_unknown_fields=True):
    format: AudioFormat | UnsetType = UNSET
    transcription: Transcription | UnsetType | None = UNSET
    turn_detection: TurnDetection | UnsetType | None = UNSET
    noise_reduction: NoiseReduction | UnsetType | None = UNSET


class Audio(msgspec.Struct, forbid_unknown_fields=True):
    input: AudioInput | UnsetType = UNSET


class SessionType(msgspec.Struct):
    type: str | None = None


class GaSession(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["transcription"]
    audio: Audio | UnsetType = UNSET
    include: list[str] | UnsetType | None = UNSET


class Update(msgspec.Struct):
    session: msgspec.Raw


class ClientSecretRequest(msgspec.Struct, forbid_unknown_fields=True):
    """GA's POST /v1/realtime/client_secrets: both fields optional, as in OpenAI's API."""

    expires_after: ExpiresAfter | None = None
    #: Empty when left out (msgspec takes Raw in no union).
    session: msgspec.Raw = msgspec.Raw()


def updated(settings: SessionSettings, event: bytes, dialect: Dialect) -> SessionSettings:
    """`settings` with an update event's changes; InvalidEvent says what is wrong with it."""
    return configured(settings, _decoded(event, Update).session, dialect)


def configured(
    settings: SessionSettings, session: bytes | msgspec.Raw, dialect: Dialect, at: str = "session"
) -> SessionSettings:
    """`settings` with a session object's changes (`at` is where the object is, for naming the field
    an InvalidEvent is about)."""
    if dialect == "beta":
        beta = _decoded(session, BetaSession, at)
        settings = _with_transcription(
            settings, beta.input_audio_transcription, _at(at, "input_audio_transcription")
        )
        if not isinstance(beta.input_audio_format, UnsetType):
            rate = G711_RATE if beta.input_audio_format.startswith("g711") else PCM_RATE
            settings = replace(settings, format=beta.input_audio_format, rate=rate)
        settings = _with_turn_detection(settings, beta.turn_detection)
        return _with_include(settings, beta.include, _at(at, "include"))
    kind = _decoded(session, SessionType, at).type
    if kind != "transcription":
        raise InvalidEvent(
            "This server runs transcription sessions only: session.type must be 'transcription', "
            f"not {kind!r}.",
            param=_at(at, "type"),
        )
    ga = _decoded(session, GaSession, at)
    audio = ga.audio.input if not isinstance(ga.audio, UnsetType) else UNSET
    if not isinstance(audio, UnsetType):
        if not isinstance(audio.format, UnsetType):
            settings = _with_format(settings, audio.format, _at(at, "audio.input.format.rate"))
        settings = _with_transcription(settings, audio.transcription, transcription_param(dialect, at))
        settings = _with_turn_detection(settings, audio.turn_detection)
    return _with_include(settings, ga.include, _at(at, "include"))


def transcription_param(dialect: Dialect, at: str = "session") -> str:
    """Where a session's transcription settings are, in the dialect's session object at `at`."""
    return _at(at, "input_audio_transcription" if dialect == "beta" else "audio.input.transcription")


def _at(*path: str) -> str:
    return ".".join(part for part in path if part)


def secret_seconds(expires_after: ExpiresAfter | None, dialect: Dialect) -> int:
    return SECRET_SECONDS[dialect] if expires_after is None else expires_after.seconds


def stored(settings: SessionSettings) -> str:
    """A client secret's settings as the accounts store keeps them."""
    return msgspec.json.encode(settings).decode()


def restored(text: str) -> SessionSettings:
    return msgspec.json.decode(text, type=SessionSettings)


def minted(body: bytes, dialect: Dialect) -> tuple[SessionSettings, int]:
    """The settings and life in seconds a client secret is asked for with: GA's client_secrets body
    (`expires_after`, `session`), or the beta's, which is the session itself (with `client_secret`);
    InvalidEvent says what is wrong with it."""
    body = body.strip() or b"{}"  # both of OpenAI's bodies may leave everything out
    if dialect == "beta":
        secret = _decoded(body, BetaSession).client_secret
        expires_after = secret.expires_at if isinstance(secret, BetaClientSecret) else None
        settings = configured(SessionSettings(), body, "beta", MINTED_AT["beta"])
        return settings, secret_seconds(expires_after, "beta")
    asked = _decoded(body, ClientSecretRequest)
    settings = SessionSettings()
    if asked.session:
        settings = configured(settings, asked.session, "ga")
    return settings, secret_seconds(asked.expires_after, "ga")


def _decoded(data: bytes | msgspec.Raw, kind: type[T], prefix: str = "") -> T:
    try:
        decoded: T = decode_json(data, type=kind)
    except msgspec.DecodeError as error:
        # msgspec names the place as "- at `$.session.x`"; OpenAI's param is the dotted path after `$.`.
        message = str(error)
        _, at, path = message.partition(" - at `$")
        param = ".".join(p for p in (prefix, path.rstrip("`").lstrip(".") if at else "") if p) or None
        raise InvalidEvent(f"Invalid value: {message}", param=param) from None
    return decoded


def _with_format(settings: SessionSettings, audio_format: AudioFormat, param: str) -> SessionSettings:
    if audio_format.type == "audio/pcm":
        return replace(settings, format="pcm16", rate=audio_format.rate or PCM_RATE)
    if audio_format.rate not in (None, G711_RATE):
        raise InvalidEvent(
            f"G.711 ({audio_format.type}) is sampled at {G711_RATE} Hz, not {audio_format.rate}.",
            param=param,
        )
    return replace(
        settings, format="g711_ulaw" if audio_format.type == "audio/pcmu" else "g711_alaw", rate=G711_RATE
    )


def _with_transcription(
    settings: SessionSettings, given: Transcription | UnsetType | None, param: str
) -> SessionSettings:
    if isinstance(given, UnsetType):
        return settings
    if given is None:  # transcription is what this session is for: null means the defaults
        return replace(settings, model=None, language=None, prompt=None)
    try:
        language = chosen_language(given.language, given.languages or [])
    except ValueError as error:
        raise InvalidEvent(str(error), param=f"{param}.languages") from None
    try:
        prompt = hinted_prompt(given.prompt, given.keywords or [])
    except ValueError as error:
        raise InvalidEvent(str(error), param=f"{param}.prompt") from None
    return replace(settings, model=given.model, language=language, prompt=prompt)


def _with_turn_detection(
    settings: SessionSettings, given: TurnDetection | UnsetType | None
) -> SessionSettings:
    if isinstance(given, UnsetType):
        return settings
    if given is None:
        return replace(settings, turn_detection=None)
    # Semantic VAD runs as server VAD with its defaults: the session echoed says so.
    current = (settings.turn_detection or Vad()) if given.type == "server_vad" else Vad()
    return replace(
        settings,
        turn_detection=Vad(
            threshold=current.threshold if given.threshold is None else given.threshold,
            prefix_padding_ms=given.prefix_padding_ms
            if given.prefix_padding_ms is not None
            else current.prefix_padding_ms,
            silence_duration_ms=given.silence_duration_ms
            if given.silence_duration_ms is not None
            else current.silence_duration_ms,
        ),
    )


def _with_include(
    settings: SessionSettings, include: list[str] | UnsetType | None, param: str
) -> SessionSettings:
    if isinstance(include, UnsetType):
        return settings
    unknown = [item for item in include or [] if item != LOGPROBS]
    if unknown:
        raise InvalidEvent(
            f"Unknown include {unknown[0]!r}; the only one there is {LOGPROBS!r}.", param=param
        )
    return replace(settings, logprobs=bool(include))


# -- server events ---------------------------------------------------------------------------------


class TranscriptionOut(msgspec.Struct):
    model: str
    language: str | None
    prompt: str


class TurnDetectionOut(msgspec.Struct):
    threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int
    type: str = "server_vad"


class ClientSecretOut(msgspec.Struct):
    value: str
    expires_at: int


class BetaSessionOut(msgspec.Struct):
    id: str
    input_audio_format: str
    input_audio_transcription: TranscriptionOut
    turn_detection: TurnDetectionOut | None
    include: list[str] | None
    expires_at: int = 0
    object: str = "realtime.transcription_session"
    input_audio_noise_reduction: None = None
    modalities: tuple[str, ...] = ("text",)
    #: The ephemeral secret, in the answer to minting one.
    client_secret: ClientSecretOut | None = None


class FormatOut(msgspec.Struct, omit_defaults=True):
    type: str
    rate: int | None = None


class AudioInputOut(msgspec.Struct):
    format: FormatOut
    transcription: TranscriptionOut
    turn_detection: TurnDetectionOut | None
    noise_reduction: None = None


class AudioOut(msgspec.Struct):
    input: AudioInputOut


class GaSessionOut(msgspec.Struct):
    id: str
    audio: AudioOut
    include: list[str] | None
    type: str = "transcription"
    object: str = "realtime.transcription_session"
    expires_at: int = 0


class ClientSecretCreated(msgspec.Struct):
    """GA's answer to minting a client secret."""

    value: str
    expires_at: int
    session: GaSessionOut


def session_out(
    settings: SessionSettings, session_id: str, dialect: Dialect, secret: ClientSecretOut | None = None
) -> BetaSessionOut | GaSessionOut:
    """The session as the dialect shows it; `secret` is the beta's, in the answer to minting one (GA's
    answer has it beside the session, `ClientSecretCreated`)."""
    transcription = TranscriptionOut(
        model=settings.model or "whisper-1", language=settings.language, prompt=settings.prompt or ""
    )
    vad = settings.turn_detection
    turn_detection = (
        None
        if vad is None
        else TurnDetectionOut(vad.threshold, vad.prefix_padding_ms, vad.silence_duration_ms)
    )
    include = [LOGPROBS] if settings.logprobs else None
    if dialect == "beta":
        return BetaSessionOut(
            session_id, settings.format, transcription, turn_detection, include, client_secret=secret
        )
    audio_format = {
        "pcm16": FormatOut("audio/pcm", settings.rate),
        "g711_ulaw": FormatOut("audio/pcmu"),
        "g711_alaw": FormatOut("audio/pcma"),
    }[settings.format]
    return GaSessionOut(
        session_id, AudioOut(AudioInputOut(audio_format, transcription, turn_detection)), include
    )


def _event_id() -> str:
    return new_id("event")


class ServerEvent(msgspec.Struct, tag_field="type", kw_only=True):
    event_id: str = msgspec.field(default_factory=_event_id)


class SessionCreated(ServerEvent, tag="session.created"):
    session: GaSessionOut


class SessionUpdated(ServerEvent, tag="session.updated"):
    session: GaSessionOut


class TranscriptionSessionCreated(ServerEvent, tag="transcription_session.created"):
    session: BetaSessionOut


class TranscriptionSessionUpdated(ServerEvent, tag="transcription_session.updated"):
    session: BetaSessionOut


def session_event(
    settings: SessionSettings, session_id: str, dialect: Dialect, *, created: bool
) -> ServerEvent:
    session = session_out(settings, session_id, dialect)
    if isinstance(session, BetaSessionOut):
        return (
            TranscriptionSessionCreated(session=session)
            if created
            else TranscriptionSessionUpdated(session=session)
        )
    return SessionCreated(session=session) if created else SessionUpdated(session=session)


class SpeechStarted(ServerEvent, tag="input_audio_buffer.speech_started"):
    audio_start_ms: int
    item_id: str


class SpeechStopped(ServerEvent, tag="input_audio_buffer.speech_stopped"):
    audio_end_ms: int
    item_id: str


class Committed(ServerEvent, tag="input_audio_buffer.committed"):
    item_id: str
    previous_item_id: str | None


class Cleared(ServerEvent, tag="input_audio_buffer.cleared"):
    pass


class Content(msgspec.Struct):
    type: str = "input_audio"
    transcript: str | None = None


class Item(msgspec.Struct):
    id: str
    content: list[Content]
    object: str = "realtime.item"
    type: str = "message"
    status: str = "completed"
    role: str = "user"


class ItemCreated(ServerEvent, tag="conversation.item.created"):
    item: Item
    previous_item_id: str | None


class ItemAdded(ServerEvent, tag="conversation.item.added"):
    item: Item
    previous_item_id: str | None


def item_event(item_id: str, previous_item_id: str | None, dialect: Dialect) -> ServerEvent:
    item = Item(item_id, [Content()])
    if dialect == "beta":
        return ItemCreated(item=item, previous_item_id=previous_item_id)
    return ItemAdded(item=item, previous_item_id=previous_item_id)


class TranscriptionDelta(ServerEvent, tag="conversation.item.input_audio_transcription.delta"):
    item_id: str
    delta: str
    content_index: int = 0
    #: With include item.input_audio_transcription.logprobs: the delta's own tokens.
    logprobs: list[Logprob] | None = None


class DurationUsage(msgspec.Struct):
    seconds: float
    type: str = "duration"


class TranscriptionCompleted(ServerEvent, tag="conversation.item.input_audio_transcription.completed"):
    item_id: str
    transcript: str
    usage: DurationUsage
    content_index: int = 0
    logprobs: list[Logprob] | None = None
    languages: list[Language] | None = None


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None
    param: str | None
    #: The client event that caused it.
    event_id: str | None


class ErrorEvent(ServerEvent, tag="error"):
    error: ErrorDetail


class TranscriptionFailed(ServerEvent, tag="conversation.item.input_audio_transcription.failed"):
    item_id: str
    error: ErrorDetail
    content_index: int = 0
