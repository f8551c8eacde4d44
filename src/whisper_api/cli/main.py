"""`whisper-api`: serve the API, run job workers, transcribe files locally, manage models, keys, users and
jobs."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path

import msgspec

from whisper_api import __version__
from whisper_api import settings as settings_module
from whisper_api.cli.accounts import add_account_commands
from whisper_api.engine.types import MAX_DECODERS, MIN_TEMPERATURE_INCREMENT
from whisper_api.settings import Settings

_LOCAL_FORMATS = ("text", "srt", "vtt", "tsv", "json", "verbose_json")


def _flag_type(annotation: object) -> tuple[type, dict[str, object]]:
    """argparse type and extras for one Settings field annotation."""
    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    if isinstance(base, types.UnionType):  # `X | None`
        base = next(arg for arg in typing.get_args(base) if arg is not type(None))
    if typing.get_origin(base) is typing.Literal:
        return str, {"choices": typing.get_args(base)}
    if base is bool:
        return bool, {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(base) is list:
        return str, {"action": "append", "metavar": "VALUE"}
    return typing.cast(type, base), {}


#: The settings each command that runs no server reads; `serve` and `worker` take them all.
_TRANSCRIBE_SETTINGS = (
    "models_dir",
    "default_model",
    "vad_model",
    "threads",
    "use_gpu",
    "flash_attn",
    "word_alignment",
    "max_audio_seconds",
    "log_level",
    "log_format",
)
_MODELS_SETTINGS = ("models_dir", "default_model", "model_base_url", "log_level")


def _shown(value: object) -> str:
    """A default as a person would type it: `models`, not `PosixPath('models')`."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if value is None:
        return "none"
    if value == "":
        return "''"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    hints = typing.get_type_hints(Settings, include_extras=True)
    defaults = Settings()
    for name in names or settings_module.field_names():
        annotation = hints[name]
        kind, extras = _flag_type(annotation)
        meta = next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, msgspec.Meta)), None)
        env = settings_module.ENV_PREFIX + name.upper()
        help_text = (
            f"{meta.description if meta else ''} [env {env}; default {_shown(getattr(defaults, name))}]"
        )
        flags = ["--" + alias.replace("_", "-") for alias in (name, *settings_module.ALIASES.get(name, ()))]
        if extras.get("action") is None:
            extras["type"] = kind
        parser.add_argument(*flags, dest=name, default=None, help=help_text, **extras)  # type: ignore[arg-type]


def _settings(args: argparse.Namespace, *, quiet: bool = True) -> Settings:
    """Settings from flags and environment, with logging set up; `quiet` logs warnings only unless asked."""
    from whisper_api.ops.logging import configure

    flags = {name: getattr(args, name, None) for name in settings_module.field_names()}
    try:
        settings = settings_module.from_sources(flags)
    except msgspec.ValidationError as error:
        raise SystemExit(f"whisper-api: invalid setting: {error}") from None
    explicit_level = (
        getattr(args, "log_level", None) is not None or settings_module.ENV_PREFIX + "LOG_LEVEL" in os.environ
    )
    configure("warning" if quiet and not explicit_level else settings.log_level, settings.log_format)
    return settings


def _trace_native_crashes() -> None:
    """A crash inside native code (whisper.cpp, ffmpeg) ends the process without a Python exception;
    with this, it first writes every thread's Python stack to stderr, so the log shows what ran."""
    faulthandler.enable(all_threads=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fallback_step(text: str) -> float:
    """--temperature-increment-on-fallback: 0, or a step that reaches 1 in a few passes."""
    step = float(text)
    if step != 0 and not MIN_TEMPERATURE_INCREMENT <= step <= 1:
        raise argparse.ArgumentTypeError(f"must be 0 or between {MIN_TEMPERATURE_INCREMENT:g} and 1")
    return step


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from whisper_api.http.app import create_app
    from whisper_api.http.protocol import with_header_timeout

    _trace_native_crashes()
    settings = _settings(args, quiet=False)
    if settings.api_keys_file is not None and not settings.api_keys_file.is_file():
        raise SystemExit(f"whisper-api: API key file {settings.api_keys_file} does not exist")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        lifespan="on",
        # uvicorn has no deadline for a request's head (slowloris) nor for a stalled body: the protocol
        # adds them.
        http=with_header_timeout(settings.header_timeout_seconds, settings.body_timeout_seconds),
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from whisper_api.cli.worker import run_worker

    _trace_native_crashes()
    asyncio.run(run_worker(_settings(args, quiet=False)))
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from whisper_api.engine.catalog import ModelCatalog, provenance

    settings = _settings(args)
    catalog = ModelCatalog(settings.models_dir, settings.default_model)
    models = catalog.list()
    if not models:
        print(f"No models in {settings.models_dir}. Get one with: whisper-api models pull tiny.en")
        return 0
    print(f"{'MODEL':32} {'FILE SIZE':>13}  {'SIZE':7} {'TYPE':5} LANGUAGES")
    for model in models:
        kind = "multilingual" if model.multilingual else "english-only"
        details = f"{model.size_name or '-':7} {model.weight_type:5} {kind}"
        print(f"{model.id:32} {model.size / 2**20:9.1f} MiB  {details}")
        if origin := provenance(model.path):
            print(f"  {origin}")
    return 0


def _models_import(args: argparse.Namespace) -> int:
    from whisper_api.engine.convert import ConversionError, import_ct2

    settings = _settings(args)
    try:
        imported = import_ct2(
            args.path, settings.models_dir, quantization=args.quantize, name=args.name, force=args.force
        )
    except ConversionError as error:
        print(f"whisper-api: {error}", file=sys.stderr)
        return 1
    print(imported.path)
    return 0


def _models_pull(args: argparse.Namespace) -> int:
    from whisper_api.engine.download import DownloadError, pull

    settings = _settings(args)
    try:
        path = pull(
            args.name, settings.models_dir, base_url=settings.model_base_url, progress=True, force=args.force
        )
    except DownloadError as error:
        print(f"whisper-api: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    from whisper_api.cli.transcribe import transcribe_files
    from whisper_api.engine.types import DecodeOptions
    from whisper_api.service.formats import SUBTITLE_FORMATS, SubtitleOptions

    _trace_native_crashes()
    subtitles = SubtitleOptions(args.max_line_width, args.max_line_count, args.highlight_words)
    if subtitles.needs_words and args.format not in SUBTITLE_FORMATS:
        raise SystemExit(
            "whisper-api: --max-line-width, --max-line-count and --highlight-words shape srt and vtt"
        )
    settings = _settings(args)
    options = DecodeOptions(
        task="translate" if args.translate else "transcribe",
        language=args.language,
        beam_size=args.beam_size,
        temperature_increment_on_fallback=args.temperature_increment_on_fallback,
        # Cues cut at words are cut where whisper times them.
        word_timestamps=args.format == "verbose_json" or subtitles.needs_words,
    )
    files = [Path(name) for name in args.files]
    return asyncio.run(
        transcribe_files(
            settings, files, model=args.model, options=options, output_format=args.format, subtitles=subtitles
        )
    )


def _jobs_client(args: argparse.Namespace):
    from whisper_api.cli.remote import JobsClient

    return JobsClient(args.server, args.api_key)


def _run_remote(action: typing.Callable[[], int]) -> int:
    from whisper_api.cli.remote import RemoteError

    try:
        return action()
    except RemoteError as error:
        print(f"whisper-api: {error}", file=sys.stderr)
        return 1


def _jobs_submit(args: argparse.Namespace) -> int:
    from whisper_api.cli.remote import show

    client = _jobs_client(args)
    fields = {
        "model": args.model,
        "language": args.language,
        "task": "translate" if args.translate else None,
        "callback_url": args.callback_url,
        "temperature_increment_on_fallback": args.temperature_increment_on_fallback,
    }

    def submit() -> int:
        job = client.submit(
            file=Path(args.file) if args.file else None,
            url=args.url,
            file_id=args.file_id,
            fields=fields,
            formats=args.format or (),
        )
        if not args.wait:
            print(show(job))
            return 0
        job = client.wait(job["id"])
        if job["status"] != "succeeded":
            print(show(job))
            return 1
        print(client.result(job["id"], (args.format or ["text"])[0]), end="")
        return 0

    return _run_remote(submit)


def _jobs_list(args: argparse.Namespace) -> int:
    from whisper_api.cli.remote import summary

    def listing() -> int:
        for job in _jobs_client(args).list(status=args.status, limit=args.limit):
            print(summary(job))
        return 0

    return _run_remote(listing)


def _jobs_get(args: argparse.Namespace) -> int:
    from whisper_api.cli.remote import show

    def get() -> int:
        print(show(_jobs_client(args).get(args.job_id)))
        return 0

    return _run_remote(get)


def _jobs_cancel(args: argparse.Namespace) -> int:
    from whisper_api.cli.remote import summary

    def cancel() -> int:
        print(summary(_jobs_client(args).cancel(args.job_id)))
        return 0

    return _run_remote(cancel)


def _jobs_result(args: argparse.Namespace) -> int:
    def result() -> int:
        client = _jobs_client(args)
        if args.wait and client.wait(args.job_id)["status"] != "succeeded":
            print(f"whisper-api: job {args.job_id} did not succeed", file=sys.stderr)
            return 1
        print(client.result(args.job_id, args.format), end="")
        return 0

    return _run_remote(result)


def _add_jobs_commands(commands: argparse._SubParsersAction) -> None:
    jobs = commands.add_parser("jobs", help="Asynchronous jobs on a running server (submit, list, ...).")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True)

    def command(name: str, help_text: str, run: typing.Callable[[argparse.Namespace], int]):
        parser = job_commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--server",
            default=os.environ.get("WHISPER_API_SERVER", "http://127.0.0.1:8000"),
            help="The server's base URL [env WHISPER_API_SERVER].",
        )
        parser.add_argument(
            "--api-key", default=os.environ.get("WHISPER_API_KEY"), help="API key [env WHISPER_API_KEY]."
        )
        parser.set_defaults(run=run)
        return parser

    submit = command("submit", "Queue a job for a file, a URL or an uploaded file's id.", _jobs_submit)
    source = submit.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="Audio or video file to upload.")
    source.add_argument("--url", help="Audio the server fetches.")
    source.add_argument("--file-id", help="A file uploaded earlier (/v1/files).")
    submit.add_argument("--model", help="Model name (default: the server's).")
    submit.add_argument("--language", help="ISO-639-1 code; detected when omitted.")
    submit.add_argument("--translate", action="store_true", help="Translate into English.")
    submit.add_argument(
        "--format",
        action="append",
        choices=_LOCAL_FORMATS,
        help="Result format (repeatable; with --wait the first is printed).",
    )
    submit.add_argument("--callback-url", help="POSTed the finished job (signed).")
    submit.add_argument("--temperature-increment-on-fallback", metavar="STEP", help="0 disables fallback.")
    submit.add_argument(
        "--wait", action="store_true", help="Show progress until done, then print the result."
    )

    listing = command("list", "Jobs, newest first.", _jobs_list)
    listing.add_argument("--status", choices=("queued", "running", "succeeded", "failed", "cancelled"))
    listing.add_argument("--limit", type=int, default=20)

    getting = command("get", "A job's full record.", _jobs_get)
    getting.add_argument("job_id")
    cancelling = command("cancel", "Cancel a queued or running job.", _jobs_cancel)
    cancelling.add_argument("job_id")
    result = command("result", "Print a job's result.", _jobs_result)
    result.add_argument("job_id")
    result.add_argument("--format", choices=_LOCAL_FORMATS, default="text")
    result.add_argument(
        "--wait", action="store_true", help="Wait (with progress) for the job to finish first."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="whisper-api", description=__doc__)
    parser.add_argument("--version", action="version", version=f"whisper-api {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="Run the HTTP API.")
    _add_settings_flags(serve)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker", help="Run queued transcription jobs, without the HTTP API (shares --database-url)."
    )
    _add_settings_flags(worker)
    worker.set_defaults(run=_worker)

    transcribe = commands.add_parser("transcribe", help="Transcribe files locally, without a server.")
    transcribe.add_argument(
        "files", nargs="+", metavar="FILE", help="Audio or video files, any container or codec."
    )
    transcribe.add_argument("--model", default=None, help="Model name (default: the default model).")
    transcribe.add_argument("--language", default=None, help="ISO-639-1 code; detected when omitted.")
    transcribe.add_argument(
        "--format",
        choices=_LOCAL_FORMATS,
        default="text",
        help="What is printed: plain text, subtitles, or JSON (verbose_json has segments and words) "
        "[default text].",
    )
    transcribe.add_argument("--translate", action="store_true", help="Translate into English.")
    transcribe.add_argument(
        "--max-line-width", type=_positive, default=None, metavar="N", help="srt/vtt: characters in a line."
    )
    transcribe.add_argument(
        "--max-line-count", type=_positive, default=None, metavar="N", help="srt/vtt: lines in a cue."
    )
    transcribe.add_argument(
        "--highlight-words",
        action="store_true",
        help="srt/vtt: each cue once per word, the word spoken underlined.",
    )
    transcribe.add_argument(
        "--beam-size",
        type=int,
        choices=range(1, MAX_DECODERS + 1),
        default=None,
        metavar=f"1-{MAX_DECODERS}",
        help="Beam search width (default: greedy).",
    )
    transcribe.add_argument(
        "--temperature-increment-on-fallback",
        type=_fallback_step,
        default=0.2,
        metavar="STEP",
        help="Retry a window that fails whisper's checks at a temperature this much higher "
        "(0 disables retries).",
    )
    _add_settings_flags(transcribe, _TRANSCRIBE_SETTINGS)
    transcribe.set_defaults(run=_transcribe)

    models = commands.add_parser("models", help="List, download or import ggml models.")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    listing = model_commands.add_parser("list", help="Models in the models directory.")
    _add_settings_flags(listing, _MODELS_SETTINGS)
    listing.set_defaults(run=_models_list)
    pulling = model_commands.add_parser("pull", help="Download a model from whisper.cpp's repository.")
    pulling.add_argument("name", help="tiny, tiny.en, base, base.en, small, ..., large-v3-turbo")
    pulling.add_argument("--force", action="store_true", help="Download again even if present.")
    _add_settings_flags(pulling, _MODELS_SETTINGS)
    pulling.set_defaults(run=_models_pull)
    importing = model_commands.add_parser(
        "import", help="Convert a faster-whisper (CTranslate2) model directory into a ggml model."
    )
    importing.add_argument("path", type=Path, help="Directory with model.bin, config.json, vocabulary.")
    importing.add_argument(
        "--quantize",
        choices=("f16", "bf16", "q8_0", "q5_0", "q5_1", "q4_0", "q4_K", "q5_K", "q6_K", "iq4_nl"),
        default="f16",
        help="Weight type: f16 (default, as the source), bf16 (faster than f16 with a libwhisper built for a "
        "CPU with AVX512-BF16), or q8_0 / q5_0 / q5_1 / q4_0 (smaller; q8_0 and q4_0 are faster on CPUs), "
        "or ggml's q4_K / q5_K / q6_K (base and larger) / iq4_nl, which keep more accuracy per bit.",
    )
    importing.add_argument("--name", help="Model name (default: from its size and type, e.g. base-q8_0).")
    importing.add_argument("--force", action="store_true", help="Replace a model of the same name.")
    _add_settings_flags(importing, _MODELS_SETTINGS)
    importing.set_defaults(run=_models_import)

    _add_jobs_commands(commands)

    add_account_commands(commands, _settings, _add_settings_flags)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
