"""What the engine takes and gives back: plain values, no HTTP and no whisper.cpp handles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

Task = Literal["transcribe", "translate"]

#: whisper.cpp runs at most this many decoders (WHISPER_MAX_DECODERS): the bound of beam_size and best_of.
MAX_DECODERS = 8
#: The smallest non-zero temperature_increment_on_fallback. whisper.cpp decodes a failing window again at
#: each step from the temperature up to 1, so the step sets how many passes a window may cost (11 at
#: most with this); a step too small to change a float never reaches 1 and fills memory with steps.
MIN_TEMPERATURE_INCREMENT = 0.1


@dataclass(frozen=True, slots=True)
class SpeechRules:
    """How voice activity detection finds speech (whisper.cpp's whisper_vad_params, in our units)."""

    #: A 32 ms frame whose speech probability reaches this is speech.
    threshold: float = 0.5
    #: Shorter bursts are dropped as noise.
    min_speech_ms: int = 250
    #: Silence must last this long to end a span.
    min_silence_ms: int = 300
    #: Audio kept before and after each span, so word edges are not clipped.
    pad_ms: int = 100


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """whisper.cpp decoding knobs, with OpenAI's / openai-whisper's names and defaults."""

    task: Task = "transcribe"
    #: ISO-639-1 code; None detects the language on a multilingual model.
    language: str | None = None
    #: Text to condition on; whisper reads only its last tokens (half its text context: 223 of them).
    prompt: str | None = None
    temperature: float = 0.0
    #: Added to the temperature when a window fails the thresholds below; 0 disables fallback, and
    #: any other value is at least MIN_TEMPERATURE_INCREMENT.
    temperature_increment_on_fallback: float = 0.2
    #: None → greedy decoding; otherwise beam search of this width (1 to MAX_DECODERS).
    beam_size: int | None = None
    #: Candidates sampled at a non-zero temperature (1 to MAX_DECODERS).
    best_of: int = 5
    patience: float | None = None
    #: whisper.cpp's entropy threshold plays the part of openai-whisper's compression-ratio threshold.
    compression_ratio_threshold: float = 2.4
    logprob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    condition_on_previous_text: bool = True
    suppress_blank: bool = True
    #: openai-whisper's and faster-whisper's default (suppress_tokens=-1); whisper.cpp's is off, and writes a
    #: silence as "[BLANK_AUDIO]".
    suppress_non_speech_tokens: bool = True
    #: openai-whisper's length_penalty (GNMT's alpha, 0 to 1) for ranking candidates (best_of, beams);
    #: None divides a candidate's log-probability by its length.
    length_penalty: float | None = None
    word_timestamps: bool = False
    #: Transcribe only what voice activity detection finds to be speech; None transcribes everything.
    speech_only: SpeechRules | None = None


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    #: Raw bytes: one UTF-8 character may be split across two tokens.
    bytes: bytes
    logprob: float
    #: Seconds from the start of the audio, timed only with word timestamps on (`token_times.py`).
    start: float
    end: float
    #: Timestamp, start-of-transcript and other control tokens carry no text.
    special: bool

    @property
    def text(self) -> str:
        return self.bytes.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    index: int
    start: float
    end: float
    text: str
    tokens: tuple[Token, ...]
    no_speech_prob: float

    @property
    def text_tokens(self) -> tuple[Token, ...]:
        return tuple(token for token in self.tokens if not token.special)

    def retimed(self, clock: Callable[[float], float]) -> Segment:
        """The same segment with its times and its tokens' times passed through `clock`."""
        tokens = tuple(replace(t, start=clock(t.start), end=clock(t.end)) for t in self.tokens)
        return replace(self, start=clock(self.start), end=clock(self.end), tokens=tokens)

    @property
    def avg_logprob(self) -> float:
        text_tokens = self.text_tokens
        if not text_tokens:
            return 0.0
        return sum(token.logprob for token in text_tokens) / len(text_tokens)


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    #: ISO-639-1 code ("en") and whisper's English name ("english").
    code: str
    name: str
    probability: float
    #: The most probable candidates, best first: (code, probability).
    candidates: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Transcript:
    task: Task
    #: Language the text is in before translation: given by the caller or detected.
    language: LanguageGuess
    duration: float
    segments: tuple[Segment, ...]
    temperature: float
    words: tuple[Word, ...] = field(default=())

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()

    def retimed(self, clock: Callable[[float], float]) -> Transcript:
        """The same transcript with every time (segments, tokens, words) passed through `clock`, a
        non-decreasing map onto another timeline; it keeps words inside segments and in order."""
        segments = tuple(segment.retimed(clock) for segment in self.segments)
        words = tuple(replace(w, start=clock(w.start), end=clock(w.end)) for w in self.words)
        return replace(self, segments=segments, words=words)

    def shifted(self, seconds: float) -> Transcript:
        """The same transcript with every time moved `seconds` later (a clip cut from a longer one)."""
        return self.retimed(lambda t: t + seconds) if seconds else self
