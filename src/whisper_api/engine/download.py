"""`whisper-api models pull NAME`: fetch whisper.cpp's ggml models from Hugging Face (or a mirror)."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

import httpx
from tqdm import tqdm

from whisper_api.engine.catalog import FILE_PREFIX, MODEL_SUFFIX, is_vad_model, read_header

DEFAULT_BASE_URL = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main"
PARTIAL_SUFFIX = ".partial"
BASE_URL_VARIABLE = "WHISPER_API_MODEL_BASE_URL"

#: SHA-1 of each official model file, from whisper.cpp's models/README.md (as vendored in pywhispercpp 1.5.1).
KNOWN_MODELS: Mapping[str, str] = MappingProxyType(
    {
        "tiny": "bd577a113a864445d4c299885e0cb97d4ba92b5f",
        "tiny.en": "c78c86eb1a8faa21b369bcd33207cc90d64ae9df",
        "base": "465707469ff3a37a2b9b8d8f89f2f99de7299dac",
        "base.en": "137c40403d78fd54d454da0f9bd998f78703390c",
        "small": "55356645c2b361a969dfd0ef2c5a50d530afd8d5",
        "small.en": "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022",
        "small.en-tdrz": "b6c6e7e89af1a35c08e6de56b66ca6a02a2fdfa1",
        "medium": "fd9727b6e1217c2f614f9b698455c4ffd82463b4",
        "medium.en": "8c30f0e44ce9560643ebd10bbe50cd20eafd3723",
        "large-v1": "b1caaf735c4cc1429223d5a74f0f4d0b9b59a299",
        "large-v2": "0f4c8e34f21cf1a914c59d8b3ce882345ad349d6",
        "large-v2-q5_0": "00e39f2196344e901b3a2bd5814807a769bd1630",
        "large-v3": "ad82bf6a9043ceed055076d0fd39f5f186ff8062",
        "large-v3-q5_0": "e6e2ed78495d403bef4b7cff42ef4aaadcfea8de",
        "large-v3-turbo": "4af2b29d7ec73d781377bfd1758ca957a807e941",
        "large-v3-turbo-q5_0": "e050f7970618a659205450ad97eb95a18d69c9ee",
        # Silero VAD, converted by whisper.cpp (ggml-org/whisper-vad).
        "silero-v5.1.2": "a372f48dcf0bd9e4330eef2802bc46e061c19634",
        "silero-v6.2.0": "470e5d9d094ddba2f0a512cecc3732a252188abd",
    }
)

#: Every model whisper.cpp's download-ggml-model.sh offers; the quantized ones lack a published checksum.
PUBLISHED_MODELS: tuple[str, ...] = (
    *("tiny", "tiny.en", "tiny-q5_1", "tiny.en-q5_1", "tiny-q8_0"),
    *("base", "base.en", "base-q5_1", "base.en-q5_1", "base-q8_0"),
    *("small", "small.en", "small.en-tdrz", "small-q5_1", "small.en-q5_1", "small-q8_0"),
    *("medium", "medium.en", "medium-q5_0", "medium.en-q5_0", "medium-q8_0"),
    *("large-v1", "large-v2", "large-v2-q5_0", "large-v2-q8_0", "large-v3", "large-v3-q5_0"),
    *("large-v3-turbo", "large-v3-turbo-q5_0", "large-v3-turbo-q8_0"),
    *("silero-v5.1.2", "silero-v6.2.0"),
)

# The tinydiarize model lives in its author's repository, the VAD models in ggml-org's.
_VAD_REPOSITORY = "https://huggingface.co/ggml-org/whisper-vad/resolve/main"
_ELSEWHERE = {
    "small.en-tdrz": "https://huggingface.co/akashmjn/tinydiarize-whisper.cpp/resolve/main",
    "silero-v5.1.2": _VAD_REPOSITORY,
    "silero-v6.2.0": _VAD_REPOSITORY,
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CHUNK = 1 << 20


class DownloadError(Exception):
    """A pull failed; the message is a sentence for a terminal user, and no partial file is left behind."""


def model_name(name: str) -> str:
    """The short name (`tiny.en`) for any accepted spelling: `tiny.en`, `ggml-tiny.en`, `ggml-tiny.en.bin`."""
    short = name.strip().removesuffix(MODEL_SUFFIX).removeprefix(FILE_PREFIX)
    # The name becomes both a URL path segment and a file name, so it must be one plain segment.
    if not _NAME.fullmatch(short) or ".." in short:
        raise DownloadError(f"{name!r} is not a model name; try one of: {', '.join(PUBLISHED_MODELS)}.")
    return short


def model_url(short: str, base_url: str = DEFAULT_BASE_URL) -> str:
    if base_url == DEFAULT_BASE_URL:
        base_url = _ELSEWHERE.get(short, base_url)
    return f"{base_url.rstrip('/')}/{FILE_PREFIX}{short}{MODEL_SUFFIX}"


def pull(
    name: str,
    models_dir: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    progress: bool = True,
    timeout: float = 30.0,
    force: bool = False,
) -> Path:
    """Download model `name` into `models_dir` and return its path; an existing file is kept unless `force`.

    With `progress`, a progress bar and notes (such as a missing checksum) go to stderr.
    """
    short = model_name(name)
    destination = Path(models_dir) / f"{FILE_PREFIX}{short}{MODEL_SUFFIX}"
    if destination.is_file() and not force:
        return destination
    url = model_url(short, base_url)
    expected_sha1 = KNOWN_MODELS.get(short)
    if expected_sha1 is None and progress:
        print(_no_checksum_note(short, url), file=sys.stderr)
    partial = destination.with_name(destination.name + PARTIAL_SUFFIX)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        received = _download(url, partial, short=short, progress=progress, timeout=timeout)
        _verify(partial, url, received, expected_sha1)
        os.replace(partial, destination)
    except BaseException as error:
        # Whatever stopped the download (including Ctrl-C), a half-written file must not stay behind.
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise DownloadError(f"could not write {partial}: {error.strerror or error}.") from error
        raise
    return destination


def _no_checksum_note(short: str, url: str) -> str:
    if short in PUBLISHED_MODELS:
        return (
            f"note: whisper.cpp publishes no checksum for {short}; only its size and header will be checked."
        )
    return f"note: {short} is not one of whisper.cpp's published models; trying {url} without a checksum."


@dataclass(frozen=True, slots=True)
class _Received:
    size: int
    #: Content-Length, when the server sent one.
    expected_size: int | None
    sha1: str


def _download(url: str, partial: Path, *, short: str, progress: bool, timeout: float) -> _Received:
    """Stream `url` into `partial`, hashing as it goes; HTTP and network failures become DownloadError."""
    host = urlsplit(url).hostname or url
    # Identity encoding keeps Content-Length equal to the bytes written, so truncation is detectable.
    headers = {"Accept-Encoding": "identity"}
    size = 0
    sha1 = hashlib.sha1()
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=timeout, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            _check_status(response, short, url)
            expected_size = _content_length(response)
            with (
                partial.open("wb") as out,
                tqdm(
                    total=expected_size,
                    desc=partial.name.removesuffix(PARTIAL_SUFFIX),
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    file=sys.stderr,
                    disable=not progress,
                ) as bar,
            ):
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    sha1.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise DownloadError(_unreachable(host, error, short, partial.parent)) from error
    except httpx.TimeoutException as error:
        raise DownloadError(f"{host} stopped sending {url} after {size} bytes ({_reason(error)}).") from error
    except httpx.HTTPError as error:
        raise DownloadError(
            f"the download of {url} broke off after {size} bytes ({_reason(error)})."
        ) from error
    return _Received(size, expected_size, sha1.hexdigest())


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _unreachable(host: str, error: Exception, short: str, models_dir: Path) -> str:
    file_name = f"{FILE_PREFIX}{short}{MODEL_SUFFIX}"
    return (
        f"could not reach {host} ({_reason(error)}). If this machine is offline, copy {file_name} "
        f"into {models_dir} yourself or set {BASE_URL_VARIABLE} to a mirror."
    )


def _check_status(response: httpx.Response, short: str, url: str) -> None:
    if response.status_code == httpx.codes.NOT_FOUND:
        raise DownloadError(f"no model named {short} at {url} (HTTP 404).")
    if not response.is_success:
        raise DownloadError(f"{url} answered HTTP {response.status_code} {response.reason_phrase}.")


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _verify(partial: Path, url: str, received: _Received, expected_sha1: str | None) -> None:
    """Raise DownloadError unless `partial` is the complete, intact model."""
    if received.expected_size is not None and received.size != received.expected_size:
        raise DownloadError(
            f"the download of {url} stopped after {received.size} of {received.expected_size} bytes; "
            "the file was discarded."
        )
    if expected_sha1 is not None and received.sha1 != expected_sha1:
        raise DownloadError(
            f"checksum mismatch for {url}: expected SHA-1 {expected_sha1}, got {received.sha1}; "
            "the file was discarded."
        )
    # Catches what a checksum cannot: an HTML error page or a non-whisper file served by a mirror.
    if read_header(partial) is None and not is_vad_model(partial):
        raise DownloadError(f"{url} is not a whisper ggml model (bad header); the file was discarded.")


__all__ = [
    "DEFAULT_BASE_URL",
    "KNOWN_MODELS",
    "PUBLISHED_MODELS",
    "DownloadError",
    "model_name",
    "model_url",
    "pull",
]
