"""The models directory: which whisper.cpp ggml models are on disk, and which one a request names."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from whisper_api.errors import NotFoundError

GGML_MAGIC = 0x67676D6C
HEADER = struct.Struct("<I11i")
MODEL_SUFFIX = ".bin"
FILE_PREFIX = "ggml-"
#: OpenAI's speech-to-text model names (its SDKs' AudioModel, and the realtime transcription models):
#: clients send them unchanged, so each stands for the catalog's default model unless an operator's alias
#: names it.
OPENAI_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-transcribe",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe-diarize",
        "gpt-live-transcribe",
        "gpt-realtime-whisper",
    }
)
#: English-only vocabularies have 51864 tokens; every multilingual one has at least 51865.
MULTILINGUAL_VOCAB = 51865
_VAD_HEADER_BYTES = 64

_SIZE_BY_AUDIO_LAYERS = {4: "tiny", 6: "base", 12: "small", 24: "medium", 32: "large"}
# whisper.cpp stores ftype + 1000 * quantization-format version; the remainder is ggml's ftype.
_QNT_VERSION_FACTOR = 1000
_FTYPE_NAMES = {
    0: "f32",
    1: "f16",
    2: "q4_0",
    3: "q4_1",
    7: "q8_0",
    8: "q5_0",
    9: "q5_1",
    10: "q2_K",
    11: "q3_K",
    12: "q4_K",
    13: "q5_K",
    14: "q6_K",
    19: "iq4_nl",
    24: "bf16",
}


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One whisper model file, described from its name, stat and 48-byte header (nothing else is read)."""

    id: str
    path: Path
    size: int
    created: int
    multilingual: bool
    n_vocab: int
    n_audio_state: int
    n_audio_layer: int
    n_text_state: int
    n_text_layer: int
    n_mels: int
    ftype: int

    @property
    def size_name(self) -> str | None:
        """tiny/base/small/medium/large, guessed from the encoder depth; None for custom shapes."""
        return size_name(self.n_audio_layer)

    @property
    def weight_type(self) -> str:
        """The tensors' storage type, such as "f16" or "q5_0"."""
        base = self.ftype % _QNT_VERSION_FACTOR
        return _FTYPE_NAMES.get(base, f"ftype {base}")


def size_name(n_audio_layer: int) -> str | None:
    """tiny/base/small/medium/large for an encoder this deep; None for custom shapes."""
    return _SIZE_BY_AUDIO_LAYERS.get(n_audio_layer)


def provenance(model_path: Path) -> str | None:
    """Where a model came from, in a line, read from its JSON sidecar (`ggml-base.json` beside
    `ggml-base.bin`, written by `models import` and by training); None without a readable one."""
    sidecar = model_path.with_suffix(".json")
    try:
        facts = json.loads(sidecar.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(facts, dict):
        return None
    if "source_format" in facts:
        return (
            f"imported from {facts.get('source')} ({facts['source_format']}, {facts.get('quantization')}) "
            f"on {facts.get('imported')}"
        )
    if "trained_with" in facts:
        return f"trained here, {facts.get('steps_completed')} steps (the recipe is in {sidecar.name})"
    return None


class ModelNotFound(NotFoundError, LookupError):
    """No model in the directory answers to `name`; `available` holds the ids that do exist."""

    param = "model"
    code = "model_not_found"

    def __init__(
        self,
        name: str,
        available: list[str],
        *,
        default_model: str | None = None,
        alias_of: str | None = None,
    ) -> None:
        self.name = name
        self.available = available
        what = f"{name!r} (the default model, {default_model!r})" if default_model else repr(name)
        if alias_of:
            what += f" (an alias of {alias_of!r})"
        listing = ", ".join(available) if available else "none"
        super().__init__(
            f"Model {what} not found (available: {listing}). "
            "Download one with `whisper-api models pull NAME`, e.g. `whisper-api models pull tiny.en`."
        )


@dataclass(frozen=True, slots=True)
class GgmlHeader:
    """The hyperparameters that follow the magic in a whisper.cpp model file, in file order."""

    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_mels: int
    ftype: int

    @property
    def multilingual(self) -> bool:
        return self.n_vocab >= MULTILINGUAL_VOCAB

    def packed(self) -> bytes:
        """The magic and these values as a model file starts."""
        return HEADER.pack(GGML_MAGIC, *dataclasses.astuple(self))


def _plausible(h: GgmlHeader) -> bool:
    # whisper.cpp's Silero VAD files share the ggml magic but follow it with a length-prefixed
    # "silero-16k" string, which reads as absurd dimensions here. Sanity bounds reject them
    # (and other ggml files) by content rather than by file name.
    dims = (
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels,
    )
    return (
        all(0 < d <= 1 << 20 for d in dims)
        and h.n_vocab >= 256
        and h.n_audio_state % h.n_audio_head == 0
        and h.n_text_state % h.n_text_head == 0
        and h.n_mels <= 512
        and h.ftype >= 0
    )


def parse_header(blob: bytes) -> GgmlHeader | None:
    """The whisper hyperparameters at the start of `blob`, or None if it is not a whisper ggml model."""
    if len(blob) < HEADER.size:
        return None
    magic, *values = HEADER.unpack_from(blob)
    if magic != GGML_MAGIC:
        return None
    header = GgmlHeader(*values)
    return header if _plausible(header) else None


def read_header(path: Path) -> GgmlHeader | None:
    """`parse_header` of the file's first bytes; OSError if it cannot be read."""
    with path.open("rb") as f:
        return parse_header(f.read(HEADER.size))


def is_vad_model(path: Path) -> bool:
    """Whether `path` is one of whisper.cpp's Silero VAD models (ggml magic, then "silero-...")."""
    try:
        with path.open("rb") as f:
            blob = f.read(_VAD_HEADER_BYTES)
    except OSError:
        return False
    return len(blob) >= 4 and struct.unpack_from("<I", blob)[0] == GGML_MAGIC and b"silero" in blob


def _model_id(file_name: str) -> str:
    return file_name.removesuffix(MODEL_SUFFIX)


class ModelCatalog:
    def __init__(self, directory: Path, default_model: str, aliases: Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.default_model = default_model
        #: The operator's other names for models (--model-alias): alias → a name `resolve` takes.
        self.aliases = dict(aliases or {})
        # Headers never change without the file's mtime or size changing, so rescans reread only new files.
        self._headers: dict[tuple[Path, int, int], GgmlHeader | None] = {}

    def list(self) -> list[ModelFile]:
        """Every whisper model in the directory, sorted by id; rescans on each call."""
        seen: dict[tuple[Path, int, int], GgmlHeader | None] = {}
        models = []
        for path in self._candidates():
            try:
                stat = path.stat()
                key = (path, stat.st_mtime_ns, stat.st_size)
                header = self._headers[key] if key in self._headers else read_header(path)
            except OSError:  # removed or unreadable right now: not cached, so the next scan retries
                continue
            seen[key] = header
            if header is not None:
                models.append(_model_file(path, stat.st_size, int(stat.st_mtime), header))
        self._headers = seen  # forget files that are gone or changed
        return sorted(models, key=lambda m: m.id)

    def resolve(self, name: str) -> ModelFile:
        """The model `name` refers to: an id, a file name, a short name, an operator's alias, or one
        of OpenAI's model names ("whisper-1", "gpt-4o-transcribe", ...) for the default."""
        requested = name.strip()
        wanted = self.aliases.get(requested, requested)
        default = self.default_model.strip()
        if wanted in OPENAI_MODELS:  # the default model may be named by an alias too
            wanted = self.aliases.get(default, default)
        by_id = {m.id: m for m in self.list()}
        if _is_safe_name(wanted):
            for candidate in _id_candidates(wanted):
                if candidate in by_id:
                    return by_id[candidate]
        raise ModelNotFound(
            requested,
            list(by_id),
            default_model=default if requested in OPENAI_MODELS else None,
            alias_of=wanted if requested in self.aliases else None,
        )

    def resolved_aliases(self) -> builtins.list[tuple[str, ModelFile]]:
        """Each alias whose model is in the directory, with the model, sorted by alias."""
        resolved = []
        for alias in sorted(self.aliases):
            with contextlib.suppress(ModelNotFound):
                resolved.append((alias, self.resolve(alias)))
        return resolved

    def vad_model(self, name: str) -> Path:
        """Where VAD model `name` (`silero-v5.1.2`, or its file name) is or would be stored."""
        return self.directory / (FILE_PREFIX + _model_id(name).removeprefix(FILE_PREFIX) + MODEL_SUFFIX)

    def _candidates(self) -> builtins.list[Path]:
        try:
            entries = list(self.directory.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        # ".partial" downloads end in ".partial", so the suffix test alone keeps them out.
        return [
            p for p in entries if p.name.endswith(MODEL_SUFFIX) and p.name != MODEL_SUFFIX and p.is_file()
        ]


def _is_safe_name(name: str) -> bool:
    # Names only ever select among listed ids, but refusing these up front makes the guarantee obvious.
    return bool(name) and "/" not in name and "\\" not in name and ".." not in name and "\0" not in name


def _id_candidates(name: str) -> list[str]:
    """The ids `name` may stand for, most literal first."""
    stem = _model_id(name)
    candidates = [name, stem, FILE_PREFIX + name, FILE_PREFIX + stem]
    return list(dict.fromkeys(candidates))


def _model_file(path: Path, size: int, created: int, h: GgmlHeader) -> ModelFile:
    return ModelFile(
        id=_model_id(path.name),
        path=path,
        size=size,
        created=created,
        multilingual=h.multilingual,
        n_vocab=h.n_vocab,
        n_audio_state=h.n_audio_state,
        n_audio_layer=h.n_audio_layer,
        n_text_state=h.n_text_state,
        n_text_layer=h.n_text_layer,
        n_mels=h.n_mels,
        ftype=h.ftype,
    )


__all__ = [
    "GGML_MAGIC",
    "OPENAI_MODELS",
    "GgmlHeader",
    "ModelCatalog",
    "ModelFile",
    "ModelNotFound",
    "parse_header",
    "provenance",
    "read_header",
    "size_name",
]
