"""Every setting of the service, in one typed place.

Each field is also a `whisper-api serve` flag (`--max-queue`) and an environment variable
(`WHISPER_API_MAX_QUEUE`). Precedence: flag, then environment, then the default here.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from whisper_api.engine.download import DEFAULT_BASE_URL

ENV_PREFIX = "WHISPER_API_"
#: Former names of settings, still read as flags and environment variables: field -> old names.
ALIASES = {"contexts": ("workers",)}
_LISTS = {"api_keys", "cors_origins", "url_fetch_allow", "model_alias"}


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[str, _doc("Address to listen on.")] = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535, description="Port to listen on.")] = 8000
    wyoming_port: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=65535,
            description="`serve` only: speak Home Assistant's Wyoming protocol (speech to text, no "
            "authentication) on this TCP port at --host; 0 = off.",
        ),
    ] = 0
    models_dir: Annotated[Path, _doc("Directory of ggml model files.")] = Path("models")
    data_dir: Annotated[
        Path, _doc("Directory of the service's own state (API keys made by `keys create`).")
    ] = Path("data")
    default_model: Annotated[str, _doc("Model used for `whisper-1` and when a request names none.")] = (
        "base.en"
    )
    model_alias: Annotated[
        list[str],
        _doc(
            "Another name requests may use for a model, NAME=MODEL (e.g. cpu-lite=base.en); repeat the flag "
            "(comma-separated in the environment). Listed by /v1/models."
        ),
    ] = msgspec.field(default_factory=list)
    vad_model: Annotated[
        str,
        _doc("Silero VAD model in the models dir for chunking_strategy and live streams ('' = none)."),
    ] = "silero-v5.1.2"
    preload: Annotated[bool, _doc("Load the default model at start (downloading it if missing).")] = True
    model_base_url: Annotated[
        str, _doc("Where `models pull` downloads from (a mirror of whisper.cpp's).")
    ] = DEFAULT_BASE_URL
    contexts: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            description="whisper contexts per model running in parallel (K); 0 = cores / threads, or "
            "cores + 1 (at most 9) with elastic threads. "
            "Formerly --workers (still accepted).",
        ),
    ] = 0
    threads: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            description="CPU threads per transcription (T); 0 = elastic: each takes the cores free when it "
            "starts (all of them alone), and a longer one pauses for a shorter one.",
        ),
    ] = 0
    max_queue: Annotated[
        int,
        msgspec.Meta(
            ge=1, description="Transcriptions allowed to wait; beyond it requests get 429 with Retry-After."
        ),
    ] = 16
    max_loaded_models: Annotated[int, msgspec.Meta(ge=1, description="Models kept in memory at once.")] = 2
    idle_unload_seconds: Annotated[
        float, msgspec.Meta(ge=0, description="Unload a non-default model idle this long; 0 = never.")
    ] = 900
    request_timeout: Annotated[
        float,
        msgspec.Meta(
            ge=0, description="Seconds a transcription may queue and run before it is aborted; 0 = no limit."
        ),
    ] = 3600
    max_upload_mb: Annotated[
        float, msgspec.Meta(gt=0, description="Largest accepted upload, MiB (413 beyond).")
    ] = 25
    max_audio_seconds: Annotated[
        float, msgspec.Meta(gt=0, description="Longest accepted audio, seconds.")
    ] = 3600
    api_keys: Annotated[list[str], _doc("API keys (comma-separated in the environment); none = open.")] = (
        msgspec.field(default_factory=list)
    )
    api_keys_file: Annotated[Path | None, _doc("File with one API key per line.")] = None
    balances: Annotated[
        bool,
        _doc("Charge audio to per-user token balances (ceil(seconds) × price multiplier); off = unlimited."),
    ] = False
    allow_registration: Annotated[
        bool, _doc("Let anyone create an account (seed 004's POST /api/v1/user/register).")
    ] = False
    initial_balance: Annotated[
        int, msgspec.Meta(ge=0, description="Tokens a new account starts with (with --balances).")
    ] = 0
    public_links: Annotated[
        bool,
        _doc(
            "Seed 004's /api/v1: a file's or transcription's UUID alone downloads it or reads its status, "
            "as the seed has it; off = only its owner and admins."
        ),
    ] = True
    cors_origins: Annotated[
        list[str],
        _doc("Origins browsers may call the API from (comma-separated in the environment; * for any)."),
    ] = msgspec.field(default_factory=list)
    url_fetch_allow: Annotated[
        list[str],
        _doc(
            "Non-public addresses or networks audio URLs may point at (e.g. 10.0.0.0/8, 127.0.0.1); "
            "public ones are always allowed."
        ),
    ] = msgspec.field(default_factory=list)
    url_fetch_timeout: Annotated[
        float, msgspec.Meta(gt=0, description="Seconds an audio URL may take to download.")
    ] = 60
    live_idle_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            description="A live stream (WebSocket or Wyoming) sending neither audio nor KeepAlive this long "
            "is closed.",
        ),
    ] = 10
    max_live_streams: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            description="Live streams (WebSocket /v1/listen and /v1/realtime) open at once, each holding a "
            "VAD model and a decoder; beyond it a handshake gets 429 with Retry-After. Wyoming connections, "
            "each holding its audio until the request ends, are held to as many again.",
        ),
    ] = 100
    database_url: Annotated[
        str,
        _doc(
            "Where jobs and files are recorded: a SQLAlchemy URL (postgresql+psycopg://user@host/db to "
            "share one queue across machines); '' = SQLite in the data dir."
        ),
    ] = ""
    media_dir: Annotated[
        Path | None,
        _doc("Where uploaded files are kept (storage every node mounts, with PostgreSQL); none = data dir."),
    ] = None
    job_runners: Annotated[
        int,
        msgspec.Meta(
            ge=0, description="Jobs this process runs at once (`serve` and `worker`); 0 = queue them only."
        ),
    ] = 1
    job_lease_seconds: Annotated[
        float,
        msgspec.Meta(
            ge=3, description="A job whose worker is silent this long (it died) is run again elsewhere."
        ),
    ] = 30
    metrics_port: Annotated[
        int,
        msgspec.Meta(
            ge=0, le=65535, description="`worker` only: serve Prometheus /metrics on this port (0 = none)."
        ),
    ] = 0
    max_file_mb: Annotated[
        float, msgspec.Meta(gt=0, description="Largest file accepted by /v1/files and jobs, MiB.")
    ] = 200
    max_user_storage_mb: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            description="Most that one user's files (/v1/files, /api/v1/file, job uploads) may take in all, "
            "MiB; 0 = no limit. Each upload counts in full, even when its bytes are shared. The default is "
            "a few of the largest files (--max-file-mb) or hours of compressed audio each: enough to "
            "work with, while no one tenant can fill a disk others share.",
        ),
    ] = 1024
    job_max_audio_seconds: Annotated[
        float, msgspec.Meta(gt=0, description="Longest audio an asynchronous job may have, seconds.")
    ] = 4 * 3600
    callback_secret: Annotated[
        str,
        _doc("Shared secret that signs job callbacks (Standard Webhooks; whsec_<base64> or any text)."),
    ] = ""
    callback_attempts: Annotated[
        int, msgspec.Meta(ge=1, le=20, description="Deliveries tried per callback (backoff 2, 4, 8 s ...).")
    ] = 6
    use_gpu: Annotated[
        bool, _doc("Use the GPU backend libwhisper was built with (no effect on CPU builds).")
    ] = True
    whisper_library: Annotated[
        Path | None,
        _doc(
            "libwhisper to run on, e.g. a CUDA, Metal or Vulkan build from native/ (whisper.cpp 1.8.5); "
            "none = the CPU one in the pywhispercpp wheel."
        ),
    ] = None
    flash_attn: Annotated[bool, _doc("Flash attention (whisper.cpp's default; faster on CPU and GPU).")] = (
        True
    )
    word_alignment: Annotated[
        Literal["energy", "dtw"],
        _doc(
            "How word timestamps are timed: energy (the decoder's timestamp guesses spread over the tokens "
            "and fitted to the signal; free) or dtw (whisper.cpp's alignment of text to audio through the "
            "model's alignment heads, within 0.3 s of hand-checked times on real speech; needs flash "
            "attention off, about a quarter slower on CPU, and an OpenAI-sized model: others use energy)."
        ),
    ] = "energy"
    shutdown_grace_seconds: Annotated[
        float, msgspec.Meta(ge=0, description="On SIGTERM, time in-flight requests get to finish.")
    ] = 30
    header_timeout_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0, description="A connection that takes longer to send a request's line and headers is closed."
        ),
    ] = 10
    body_timeout_seconds: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            description="A connection whose request body sends nothing this long, while the server waits "
            "for it, is closed.",
        ),
    ] = 60
    log_format: Annotated[
        Literal["auto", "json", "console"], _doc("`auto`: console on a terminal, JSON otherwise.")
    ] = "auto"
    log_level: Annotated[Literal["debug", "info", "warning", "error"], _doc("Lowest level logged.")] = "info"

    def __post_init__(self) -> None:
        for entry in self.url_fetch_allow:
            ipaddress.ip_network(entry.strip(), strict=False)  # ValueError names the bad entry
        self.model_aliases  # noqa: B018  # ValueError names the bad alias

    @property
    def model_aliases(self) -> dict[str, str]:
        """--model-alias as alias → model name; ValueError for an entry that is not NAME=MODEL or names
        an alias twice."""
        aliases: dict[str, str] = {}
        for entry in self.model_alias:
            alias, _, model = (part.strip() for part in entry.partition("="))
            if not alias or not model or "=" in model:
                raise ValueError(f"model alias {entry!r} is not NAME=MODEL (e.g. cpu-lite=base.en)")
            if alias in aliases:
                raise ValueError(f"model alias {alias!r} is given twice")
            aliases[alias] = model
        return aliases

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_user_storage_bytes(self) -> int:
        return int(self.max_user_storage_mb * 1024 * 1024)

    @property
    def jobs_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'jobs.sqlite3'}"

    @property
    def jobs_media_dir(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def parallelism(self, cores: int) -> tuple[int, int]:
        """(contexts, threads) on `cores` cores: K × T ≤ cores unless both were set explicitly; T = 0 is
        elastic."""
        if self.threads:
            return self.contexts or max(1, cores // self.threads), self.threads
        # Elastic threads share the cores, so more contexts cost only memory: one more than cores lets a
        # short clip start (a longer run pausing for it) while every core is busy.
        return self.contexts or min(cores, 8) + 1, 0

    def all_api_keys(self) -> frozenset[str]:
        keys = {key.strip() for key in self.api_keys if key.strip()}
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text().splitlines()
            keys |= {line.strip() for line in lines if line.strip() and not line.startswith("#")}
        return frozenset(keys)


def field_names() -> tuple[str, ...]:
    return Settings.__struct_fields__


def from_sources(
    flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Flags over `WHISPER_API_*` variables over defaults; raises msgspec.ValidationError."""
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for name in field_names():
        variables = [ENV_PREFIX + spelling.upper() for spelling in (name, *ALIASES.get(name, ()))]
        value = next((environ[key] for key in variables if key in environ), None)
        if value is not None:
            raw[name] = (
                [item.strip() for item in value.split(",") if item.strip()] if name in _LISTS else value
            )
    raw.update({name: value for name, value in (flags or {}).items() if value is not None})
    return msgspec.convert(raw, Settings, strict=False, dec_hook=_decode_path)


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError(f"cannot read {kind} from {value!r}")
