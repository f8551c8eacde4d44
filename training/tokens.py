"""Training targets in the token sequence whisper.cpp decodes, from whisper.cpp's own tokenizer.

A window of speech becomes

    <|startoftranscript|> <|lang|> <|transcribe|> <|t0|> text <|t1|> <|t2|> text <|t3|> ... <|endoftext|>

with one timestamp pair per sentence. whisper.cpp prompts with the first three tokens and decodes
the rest, so the model is trained to predict everything after <|startoftranscript|>, the language
token included: that prediction is what whisper.cpp's language detection reads.

Text is tokenized by whisper.cpp itself (through a throwaway context on the header's vocabulary), so
the ids are the ones whisper.cpp maps back to text, not an approximation of them.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from training.export import export_ggml
from training.ggml_header import DEFAULT_HEADER
from training.model import Dimensions, Whisper
from training.native import NativeModel

#: whisper's timestamp tokens step in 20 ms: one per encoder position, <|0.00|> to <|30.00|>.
TIMESTAMP_STEP = 0.02
N_TIMESTAMPS = 1501
#: whisper.cpp drops a window's past prompt and caps decoding at half the text context.
MAX_TARGET_TOKENS = 448 // 2 - 4


@dataclass(frozen=True)
class Segment:
    """A sentence placed in a window: seconds from the window's start."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class SpecialTokens:
    sot: int
    eot: int
    beg: int
    transcribe: int
    translate: int
    no_timestamps: int
    prev: int
    solm: int
    no_speech: int
    #: ISO code → token id, for every language whisper knows.
    languages: dict[str, int]

    def timestamp(self, seconds: float) -> int:
        index = round(seconds / TIMESTAMP_STEP)
        if not 0 <= index < N_TIMESTAMPS:
            raise ValueError(f"{seconds} s is outside a 30 s window")
        return self.beg + index

    def seconds(self, token: int) -> float:
        return (token - self.beg) * TIMESTAMP_STEP


class Tokenizer:
    """whisper.cpp's tokenizer and special token ids; keep one per process (it holds a context)."""

    def __init__(self, native: NativeModel) -> None:
        self._native = native
        languages = {code: token for token, code in native.language_tokens().items()}
        self.special = SpecialTokens(
            sot=native.sot,
            eot=native.eot,
            beg=native.beg,
            transcribe=native.transcribe,
            translate=native.translate,
            no_timestamps=native.no_timestamps,
            prev=native.prev,
            solm=native.solm,
            no_speech=native.no_speech,
            languages=languages,
        )
        self.n_vocab = native.n_vocab

    @classmethod
    def from_header(cls, header_file: Path = DEFAULT_HEADER) -> Tokenizer:
        """A tokenizer on the header's vocabulary, via a model too small to cost anything to load."""
        with torch.random.fork_rng():  # leave the caller's random state alone
            torch.manual_seed(0)
            stub = Whisper(Dimensions(width=8, heads=1, encoder_layers=1, decoder_layers=1))
        with tempfile.TemporaryDirectory() as directory:
            path = export_ggml(stub, Path(directory) / "tokenizer.bin", header_file)
            return cls(NativeModel(path, threads=1))

    @functools.lru_cache(maxsize=65_536)  # noqa: B019 - one tokenizer lives as long as the process
    def encode(self, text: str) -> tuple[int, ...]:
        return tuple(self._native.tokenize(text))

    def token_bytes(self, token: int) -> bytes:
        return self._native.token_bytes(token)

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of `tokens`, special tokens left out; bytes are joined before UTF-8 decoding."""
        text = b"".join(self.token_bytes(t) for t in tokens if t < self.special.eot)
        return text.decode("utf-8", errors="replace")

    def prompt(self, language: str) -> list[int]:
        """What whisper.cpp feeds the decoder before the first predicted token."""
        return [self.special.sot, self.special.languages[language], self.special.transcribe]

    def target(self, language: str, segments: Sequence[Segment]) -> list[int]:
        """The full sequence for a window: prompt, timestamped sentences, end of text."""
        tokens = self.prompt(language)
        for segment in segments:
            tokens.append(self.special.timestamp(segment.start))
            # whisper's text tokens start with a space, as whisper.cpp's output segments do.
            tokens.extend(self.encode(" " + segment.text.strip()))
            tokens.append(self.special.timestamp(segment.end))
        tokens.append(self.special.eot)
        if len(tokens) > MAX_TARGET_TOKENS:
            raise ValueError(f"{len(tokens)} tokens do not fit one whisper.cpp decoding pass")
        return tokens

    def vocabulary(self, texts: Iterable[str]) -> list[int]:
        """Every token `target` can give for windows of these sentences, in id order: their text
        tokens, and every special, language, task and timestamp token."""
        used = {token for text in texts for token in self.encode(" " + text.strip())}
        return sorted(used | set(range(self.special.eot, self.n_vocab)))

    def close(self) -> None:
        self._native.close()
