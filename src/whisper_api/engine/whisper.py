"""whisper.cpp models and the decoding states that run on them, through the ctypes binding.

A `WhisperModel` is one copy of a model file's weights and vocabulary (a whisper.cpp context without a
state); any number of `WhisperContext`s decode on it at once, each with its own `whisper_state`. A state is
not thread-safe, so each `WhisperContext` is used by one thread at a time; since whisper.cpp's OpenMP pool
belongs to the calling thread, which thread that is is the pool's choice (see `pool.py`). Every call into
whisper.cpp releases the GIL: a language detection or a transcription never stalls the event loop.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import structlog

from whisper_api.binding import declarations as h
from whisper_api.binding.library import default_context_params, default_full_params, load
from whisper_api.engine.catalog import ModelFile
from whisper_api.engine.token_times import DecodedToken, TokenClock
from whisper_api.engine.types import (
    MAX_DECODERS,
    MIN_TEMPERATURE_INCREMENT,
    DecodeOptions,
    LanguageGuess,
    Segment,
    Token,
    Transcript,
)
from whisper_api.engine.words import is_punctuation, words_from_segments
from whisper_api.errors import ServerFailure

SAMPLE_RATE = h.SAMPLE_RATE
#: whisper decides the language from the first 30 s window.
_DETECTION_SAMPLES = 30 * SAMPLE_RATE
_CANDIDATES = 5
#: whisper.cpp refuses input under 1 s ("input is too short"); a little over it is safe.
_MIN_SAMPLES = SAMPLE_RATE + SAMPLE_RATE // 10
#: The most of a prompt, from its end, that reaches whisper.cpp's tokenizer. The tokenizer splits words with
#: std::regex, which recurses once per byte of a word (a 30,000-letter word overflows the stack), then
#: matches each word by trying every remaining length at every token: cubic in a word's length. The last
#: 223 tokens whisper reads are about 1,000 bytes of English and fewer of other scripts, and this bound
#: keeps a single 2 KB word to milliseconds.
_PROMPT_TAIL_BYTES = 2048
#: whisper.cpp counts time in centiseconds.
_TIME_UNIT = 0.01
#: A no-speech threshold no probability is over: whisper.cpp's own decision, off.
_NEVER = 1.0

log = structlog.get_logger("whisper_api.whisper_cpp")

OnSegment = Callable[[Segment], None]
OnProgress = Callable[[int], None]
ShouldAbort = Callable[[], bool]


class ModelLoadError(ServerFailure, RuntimeError):
    code = "model_load_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The model could not be loaded: {reason}")


class Aborted(Exception):
    """whisper_full stopped because the abort check said so."""


def native(path: Path | None = None) -> ctypes.CDLL:
    """The process's libwhisper (`binding.library.load`), its logs sent to structlog."""
    library = load(path)
    _route_logs(library)
    return library


@functools.cache
def _route_logs(library: ctypes.CDLL) -> Callable[[int, bytes | None, int | None], None]:
    """whisper.cpp's logs at debug level instead of on stderr; returns the callback, which the cache keeps
    alive for as long as whisper.cpp may call it."""

    @h.LogCallback
    def forward(_level: int, text: bytes | None, _user_data: int | None) -> None:
        if text:
            log.debug(text.decode("utf-8", "replace").rstrip())

    library.whisper_log_set(forward, None)
    # Unset before the interpreter tears down, or a context thread still in whisper.cpp logs into a
    # dead Python.
    atexit.register(library.whisper_log_set, h.LogCallback(), None)
    return forward


@functools.cache
def language_names() -> dict[str, str]:
    """ISO-639-1 code → whisper's English name ("en" → "english") for every language whisper knows."""
    library = native()
    return {
        library.whisper_lang_str(i).decode(): library.whisper_lang_str_full(i).decode()
        for i in range(library.whisper_lang_max_id() + 1)
    }


#: OpenAI's model sizes by (audio width, text layers, multilingual, mel bands), and the alignment heads
#: whisper.cpp knows for each. Large v1 and v2 share a shape; v2's heads are taken, v2 being the one in use.
_ALIGNMENT_HEADS = {
    (384, 4, False, 80): h.AHEADS_TINY_EN,
    (384, 4, True, 80): h.AHEADS_TINY,
    (512, 6, False, 80): h.AHEADS_BASE_EN,
    (512, 6, True, 80): h.AHEADS_BASE,
    (768, 12, False, 80): h.AHEADS_SMALL_EN,
    (768, 12, True, 80): h.AHEADS_SMALL,
    (1024, 24, False, 80): h.AHEADS_MEDIUM_EN,
    (1024, 24, True, 80): h.AHEADS_MEDIUM,
    (1280, 32, True, 80): h.AHEADS_LARGE_V2,
    (1280, 32, True, 128): h.AHEADS_LARGE_V3,
    (1280, 4, True, 128): h.AHEADS_LARGE_V3_TURBO,
}


def alignment_heads(model: ModelFile) -> int | None:
    """whisper.cpp's preset of alignment heads for a model of OpenAI's shape; None for other shapes
    (a model trained elsewhere has no known heads, and DTW on the wrong ones would time words worse)."""
    return _ALIGNMENT_HEADS.get((model.n_audio_state, model.n_text_layer, model.multilingual, model.n_mels))


def known_language(code: str) -> bool:
    return code in language_names()


def language_name(code: str) -> str:
    return language_names().get(code, code)


class WhisperModel:
    """A ggml model file's weights and vocabulary, loaded once and shared by every state decoding on it.

    What it offers (the vocabulary, the tokenizer) is safe from any thread. `close()` it only after every
    `WhisperContext` on it is closed.

    `dtw_heads` (a `binding.declarations.AHEADS_*` preset) turns on whisper.cpp's DTW token times
    (`DecodedToken.dtw_time`), read from those alignment heads (with AHEADS_N_TOP_MOST, every head of the
    last `dtw_top_layers` text layers); whisper.cpp does DTW only without flash attention, so it turns
    that off.
    """

    def __init__(
        self,
        path: Path,
        *,
        use_gpu: bool = False,
        flash_attn: bool = False,
        dtw_heads: int | None = None,
        dtw_top_layers: int = 1,
    ) -> None:
        self._lib = native()
        params = default_context_params(self._lib)
        params.use_gpu = use_gpu
        params.flash_attn = flash_attn and dtw_heads is None
        if dtw_heads is not None:
            params.dtw_token_timestamps = True
            params.dtw_aheads_preset = dtw_heads
            params.dtw_n_top = dtw_top_layers
        pointer = self._lib.whisper_init_from_file_with_params_no_state(bytes(path), params)
        if not pointer:
            raise ModelLoadError(f"whisper.cpp could not load {path.name}")
        self._pointer: int | None = pointer
        self.path = path
        self.dtw = dtw_heads is not None
        self.multilingual = bool(self._lib.whisper_is_multilingual(pointer))
        self.end_of_text: int = self._lib.whisper_token_eot(pointer)
        self.first_timestamp: int = self._lib.whisper_token_beg(pointer)
        # whisper.cpp conditions on at most half its text context, its previous-text marker included.
        self.prompt_budget = self._lib.whisper_n_text_ctx(pointer) // 2 - 1

    @property
    def pointer(self) -> int:
        if self._pointer is None:
            raise RuntimeError("whisper model used after close()")
        return self._pointer

    def close(self) -> None:
        if self._pointer is not None:
            self._lib.whisper_free(self._pointer)
            self._pointer = None

    def tokenize(self, text: bytes) -> list[int]:
        """The tokens whisper.cpp makes of UTF-8 text."""
        # Every token spans at least one byte, so one slot per byte always suffices.
        tokens = (h.token * max(len(text), 1))()
        count = self._lib.whisper_tokenize(self.pointer, text, tokens, len(tokens))
        if count < 0:
            raise RuntimeError(f"whisper_tokenize needed {-count} slots for {len(text)} bytes")
        return tokens[:count]

    def token_bytes(self, token: int) -> bytes:
        return self._lib.whisper_token_to_str(self.pointer, token) or b""

    def prompt_tokens(self, prompt: str | None) -> list[int]:
        """The tokens of `prompt` whisper conditions on: the last ones of its last bytes."""
        if not prompt:
            return []
        # A character cut in two at the start of the tail is dropped; an unpaired surrogate becomes "?".
        tail = prompt.encode("utf-8", "replace")[-_PROMPT_TAIL_BYTES:]
        return self.tokenize(tail.decode("utf-8", "ignore").encode())[-self.prompt_budget :]


class WhisperContext:
    """One decoding state on a `WhisperModel`, used by one thread at a time.

    `threads` is how many threads a call uses unless told otherwise; the pool that owns the context sets it.
    """

    def __init__(self, model: WhisperModel, *, threads: int = 1, owns_model: bool = False) -> None:
        self._lib = native()
        state = self._lib.whisper_init_state(model.pointer)
        if not state:
            raise ModelLoadError(f"whisper.cpp could not make a decoding state for {model.path.name}")
        self._state: int | None = state
        self.model = model
        self.threads = threads
        self._owns_model = owns_model

    @classmethod
    def load(
        cls, path: Path, *, threads: int = 1, use_gpu: bool = False, flash_attn: bool = False
    ) -> WhisperContext:
        """A model of its own with one state on it (`close()` frees both)."""
        model = WhisperModel(path, use_gpu=use_gpu, flash_attn=flash_attn)
        try:
            return cls(model, threads=threads, owns_model=True)
        except BaseException:
            model.close()
            raise

    @property
    def multilingual(self) -> bool:
        return self.model.multilingual

    @property
    def path(self) -> Path:
        return self.model.path

    def close(self) -> None:
        if self._state is not None:
            self._lib.whisper_free_state(self._state)
            self._state = None
            if self._owns_model:
                self.model.close()

    @property
    def _pointers(self) -> tuple[int, int]:
        if self._state is None:
            raise RuntimeError("whisper context used after close()")
        return self.model.pointer, self._state

    def _no_speech_probability(self, threads: int) -> float:
        """The probability that the window whisper.cpp last encoded holds no speech, as openai-whisper
        measures it: of the no-speech token right after start-of-transcript.

        whisper.cpp's own (`whisper_full_get_segment_no_speech_prob`) is read from the logits of the
        prompt's first position, which its prompt pass does not write (it keeps only the last position's):
        what is there is left over from an earlier pass, so it is right only for a first window that
        language detection has just decoded. Called while that window's encoding is still on the state,
        this decodes start-of-transcript alone on it; whisper.cpp clears the text cache it uses before
        the next window's prompt.
        """
        model, state = self._pointers
        lib = self._lib
        start = (h.token * 1)(lib.whisper_token_sot(model))
        if lib.whisper_decode_with_state(model, state, start, 1, 0, threads) != 0:
            raise RuntimeError("whisper.cpp could not decode the no-speech probe")
        vocabulary = lib.whisper_n_vocab(model)
        logits = np.ctypeslib.as_array(lib.whisper_get_logits_from_state(state), shape=(vocabulary,))
        shifted = logits.astype(np.float64) - float(logits.max())
        return float(np.exp(shifted[lib.whisper_token_nosp(model)]) / np.exp(shifted).sum())

    def detect_language(self, samples: np.ndarray, threads: int | None = None) -> LanguageGuess:
        if not self.multilingual:
            return LanguageGuess("en", "english", 1.0, (("en", 1.0),))
        threads = threads or self.threads
        model, state = self._pointers
        window = _finite(np.ascontiguousarray(samples[:_DETECTION_SAMPLES], dtype=np.float32))
        if self._lib.whisper_pcm_to_mel_with_state(model, state, _floats(window), len(window), threads) != 0:
            raise RuntimeError("whisper.cpp could not compute the spectrogram")
        probabilities = np.zeros(self._lib.whisper_lang_max_id() + 1, dtype=np.float32)
        best = self._lib.whisper_lang_auto_detect_with_state(model, state, 0, threads, _floats(probabilities))
        if best < 0:
            raise RuntimeError("whisper.cpp language detection failed")
        codes = list(language_names())
        ranked = np.argsort(probabilities)[::-1][:_CANDIDATES]
        candidates = tuple((codes[i], float(probabilities[i])) for i in ranked)
        return LanguageGuess(codes[best], language_name(codes[best]), float(probabilities[best]), candidates)

    def language(self, samples: np.ndarray, code: str | None, threads: int | None = None) -> LanguageGuess:
        """The language `code` names, or the one detected in `samples` when it is None."""
        if code is None:
            return self.detect_language(_padded(samples), threads)
        return LanguageGuess(code, language_name(code), 1.0)

    def transcribe(
        self,
        samples: np.ndarray,
        options: DecodeOptions,
        *,
        threads: int | None = None,
        on_segment: OnSegment | None = None,
        on_progress: OnProgress | None = None,
        should_abort: ShouldAbort | None = None,
    ) -> Transcript:
        threads = threads or self.threads
        duration = len(samples) / SAMPLE_RATE
        samples = _padded(_finite(np.ascontiguousarray(samples, dtype=np.float32)))
        language = self.language(samples, options.language, threads)
        if should_abort is not None and should_abort():
            raise Aborted()
        params = self._params(options, language.code, threads)
        model, state = self._pointers
        segments: list[Segment] = []
        clock = self._clock(samples) if options.word_timestamps else None
        failure: list[BaseException] = []
        window = _Window()

        # whisper.cpp calls back from inside whisper_full; an exception escaping into C would abort the
        # process, so callbacks record failures and ask whisper.cpp to stop instead.
        def end_window() -> None:
            """Keep or drop the segments of the window just decoded, whose encoding is still on the state
            (before the next window's encoder, or once whisper_full is done), and report those kept.
            whisper.cpp reports a window's segments together anyway, and with DTW on only after it has
            timed them, so this is also when they are final."""
            for index in range(window.read, self._lib.whisper_full_n_segments_from_state(state)):
                if window.no_speech is None:
                    window.no_speech = self._no_speech_probability(threads)
                window.held.append(self._segment(index, duration, clock))
                window.read += 1
            for segment in window.end(options):
                segment = replace(segment, index=len(segments))
                segments.append(segment)
                if on_segment is not None:
                    on_segment(segment)

        stopped: list[bool] = []

        def abort_requested() -> bool:
            if failure:
                return True
            try:
                if should_abort is not None and should_abort():
                    stopped.append(True)
                    return True
                return False
            except BaseException as error:
                failure.append(error)
                return True

        def window_begins() -> bool:
            try:
                end_window()
            except BaseException as error:
                failure.append(error)
            return not abort_requested()

        @h.ProgressCallback
        def progress(_model: int, _state: int, percent: int, _user_data: int | None) -> None:
            try:
                # whisper.cpp counts the last window's full 30 s, so it passes 100 on most audio.
                on_progress(min(percent, 100))  # type: ignore[misc]  # only assigned when given
            except BaseException as error:
                failure.append(error)

        @h.LogitsFilterCallback
        def first_steps(_m: int, _s: int, _tokens: object, n_tokens: int, _l: object, _u: int | None) -> None:
            if n_tokens == 0:  # an attempt's first step (on whisper_full's own thread): the window's
                window.attempts += 1  # second one is a fallback to a higher temperature

        # Off: whisper.cpp's own probability is stale (see `_no_speech_probability`); `_Window` decides.
        params.no_speech_thold = _NEVER
        params.logits_filter_callback = first_steps
        if on_progress is not None:
            params.progress_callback = progress
        # Checked before each 30 s window's encoder and after every encoder and decoder pass.
        params.encoder_begin_callback = h.EncoderBeginCallback(lambda _m, _s, _u: window_begins())
        params.abort_callback = h.AbortCallback(lambda _u: abort_requested())
        status = self._lib.whisper_full_with_state(model, state, params, _floats(samples), len(samples))
        if not failure and status == 0:
            try:
                end_window()
            except BaseException as error:
                failure.append(error)
        if failure:
            raise failure[0]
        # Stopped before a window's encoder, whisper.cpp returns success with the windows before it.
        if stopped:
            raise Aborted()
        if status != 0:
            raise RuntimeError(f"whisper_full failed with status {status}")
        ordered = tuple(segments)
        return Transcript(
            task=options.task,
            language=language,
            duration=duration,
            segments=ordered,
            temperature=options.temperature,
            words=words_from_segments(ordered) if options.word_timestamps else (),
        )

    def _params(self, options: DecodeOptions, language: str, threads: int) -> h.FullParams:
        _check(options)
        if options.beam_size is None:
            params = default_full_params(self._lib, h.SAMPLING_GREEDY)
            params.greedy.best_of = options.best_of
        else:
            params = default_full_params(self._lib, h.SAMPLING_BEAM_SEARCH)
            params.beam_search.beam_size = options.beam_size
            params.beam_search.patience = -1.0 if options.patience is None else options.patience
        params.n_threads = threads
        # The struct keeps what is assigned to its pointer fields alive as long as it lives.
        params.language = language.encode()
        params.translate = options.task == "translate"
        prompt = self.model.prompt_tokens(options.prompt)
        # Tokens, not text: whisper.cpp would tokenize the text again, twice when it is long.
        params.prompt_tokens = (h.token * len(prompt))(*prompt) if prompt else None
        params.prompt_n_tokens = len(prompt)
        params.temperature = options.temperature
        params.temperature_inc = options.temperature_increment_on_fallback
        params.entropy_thold = options.compression_ratio_threshold
        params.logprob_thold = options.logprob_threshold
        params.no_speech_thold = options.no_speech_threshold
        # whisper.cpp keeps the decoded text on the state between calls; a request must never be
        # prompted with the previous request's words, so history always starts empty.
        params.no_context = True
        if not options.condition_on_previous_text:
            _condition_on_prompt_only(params, len(prompt))
        params.suppress_blank = options.suppress_blank
        params.suppress_nst = options.suppress_non_speech_tokens
        # whisper.cpp applies a penalty only above 0 (at or below, it divides by length), where
        # openai-whisper's 0 means no division at all: 1e-9 is that to within a billionth.
        if options.length_penalty is not None:
            params.length_penalty = max(options.length_penalty, 1e-9)
        # The engine times tokens itself (token_times.py), but whisper.cpp's own timing pass is what
        # fills in each token's voice length, which that uses (and, with DTW, each token's DTW time).
        params.token_timestamps = options.word_timestamps
        params.print_progress = False
        params.print_realtime = False
        params.print_timestamps = False
        params.print_special = False
        return params

    def _clock(self, samples: np.ndarray) -> TokenClock:
        return TokenClock(
            samples, end_of_text=self.model.end_of_text, first_timestamp=self.model.first_timestamp
        )

    def _segment(self, index: int, duration: float, clock: TokenClock | None) -> Segment:
        """Segment `index` of the last run, its times clamped to the audio (whisper pads the last window).

        With a `clock`, token times come from it rather than from whisper.cpp (see `token_times`).
        """
        _, state = self._pointers
        lib = self._lib

        def clamped(seconds: float) -> float:
            return min(max(seconds, 0.0), duration)

        start = lib.whisper_full_get_segment_t0_from_state(state, index) * _TIME_UNIT
        end = lib.whisper_full_get_segment_t1_from_state(state, index) * _TIME_UNIT
        decoded = [
            lib.whisper_full_get_token_data_from_state(state, index, position)
            for position in range(lib.whisper_full_n_tokens_from_state(state, index))
        ]
        texts = [self.model.token_bytes(data.id) for data in decoded]
        if clock is None:
            times = [(data.t0 * _TIME_UNIT, data.t1 * _TIME_UNIT) for data in decoded]
        else:
            aligned = [_decoded_token(data, text) for data, text in zip(decoded, texts, strict=True)]
            times = clock.times(aligned, start, end)
        tokens = [
            Token(
                id=data.id,
                bytes=text,
                logprob=float(data.plog),
                start=clamped(token_start),
                end=clamped(token_end),
                special=data.id >= self.model.end_of_text,
            )
            for data, text, (token_start, token_end) in zip(decoded, texts, times, strict=True)
        ]
        no_speech = lib.whisper_full_get_segment_no_speech_prob_from_state(state, index)
        return Segment(
            index=index,
            start=clamped(start),
            end=clamped(end),
            text=_decode_segment_text(tokens),
            tokens=tuple(tokens),
            no_speech_prob=0.0 if math.isnan(no_speech) else float(no_speech),
        )


@dataclass(slots=True)
class _Window:
    """The segments of the 30 s window being decoded, and its no-speech probability once measured."""

    held: list[Segment] = field(default_factory=list)
    no_speech: float | None = None
    #: Decoding attempts: more than one when the first fell back to a higher temperature.
    attempts: int = 0
    #: whisper.cpp segments read so far, this window's and every earlier one's.
    read: int = 0

    def end(self, options: DecodeOptions) -> list[Segment]:
        """The window's segments to keep, and a fresh start for the next window. The window is dropped
        as openai-whisper drops it (by `options`' thresholds): whisper finds no speech there and decoded it
        without confidence (a silence's "you", a noise's made-up sentence). openai-whisper does not fall
        back to a higher temperature then; whisper.cpp, blind to it, does, and a sample there may be
        confident: having fallen back is the lack of confidence at temperature 0."""
        held, no_speech, attempts = self.held, self.no_speech, self.attempts
        self.held, self.no_speech, self.attempts = [], None, 0
        if no_speech is None:
            return held
        logprobs = [token.logprob for segment in held for token in segment.tokens]
        confident = attempts <= 1 and sum(logprobs) / max(len(logprobs), 1) >= options.logprob_threshold
        if no_speech > options.no_speech_threshold and not confident:
            return []
        return [replace(segment, no_speech_prob=no_speech) for segment in held]


def _check(options: DecodeOptions) -> None:
    """Refuse what whisper.cpp fails on (too many decoders), spins on (a tiny temperature step; a
    temperature above 1 or NaN, which leaves it no temperature to decode at and never ends) or
    silently reads as another language (a code it does not know), whoever the caller."""
    if options.language is not None and not known_language(options.language):
        raise ValueError(f"whisper knows no language {options.language[:20]!r}")
    if not 0 <= options.temperature <= 1:
        raise ValueError(f"temperature must be between 0 and 1, got {options.temperature}")
    for name, value in (("beam_size", options.beam_size), ("best_of", options.best_of)):
        if value is not None and not 1 <= value <= MAX_DECODERS:
            raise ValueError(f"{name} must be between 1 and {MAX_DECODERS}, got {value}")
    if options.length_penalty is not None and not 0 <= options.length_penalty <= 1:
        raise ValueError(f"length_penalty must be between 0 and 1, got {options.length_penalty}")
    step = options.temperature_increment_on_fallback
    if step != 0 and not MIN_TEMPERATURE_INCREMENT <= step <= 1:
        raise ValueError(
            f"temperature_increment_on_fallback must be 0 or between {MIN_TEMPERATURE_INCREMENT} and 1, "
            f"got {step}"
        )


def _condition_on_prompt_only(params: h.FullParams, prompt_tokens: int) -> None:
    """Each window sees the caller's prompt (if any) but not the text decoded before it.

    whisper.cpp has one history budget for both; carrying the prompt and sizing the budget to exactly
    the prompt (plus its marker token) leaves no room for decoded text.
    """
    if not prompt_tokens:
        params.n_max_text_ctx = 0
        return
    params.carry_initial_prompt = True
    params.n_max_text_ctx = prompt_tokens + 1


def _floats(samples: np.ndarray) -> ctypes._Pointer[ctypes.c_float]:
    return samples.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _decoded_token(data: h.TokenData, text: bytes) -> DecodedToken:
    return DecodedToken(
        id=data.id,
        timestamp_id=data.tid,
        timestamp_prob=float(data.pt),
        timestamp_prob_sum=float(data.ptsum),
        voice_length=float(data.vlen),
        # whisper.cpp leaves -1 where it did no DTW.
        dtw_time=data.t_dtw * _TIME_UNIT if data.t_dtw >= 0 else None,
        punctuation=is_punctuation(text.decode("utf-8", "replace")),
    )


def _finite(samples: np.ndarray) -> np.ndarray:
    """NaN samples as silence and infinite ones at full scale: one NaN makes whisper.cpp's spectrogram NaN
    throughout (its level is set by the maximum), and the whole transcript comes out as "!!!!"."""
    if np.isfinite(samples).all():
        return samples
    return np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)


def _padded(samples: np.ndarray) -> np.ndarray:
    """Audio under a second padded with silence: whisper.cpp returns nothing at all for shorter input."""
    if len(samples) >= _MIN_SAMPLES:
        return samples
    return np.concatenate([samples, np.zeros(_MIN_SAMPLES - len(samples), dtype=np.float32)])


def _decode_segment_text(tokens: list[Token]) -> str:
    # Joining bytes before decoding keeps characters split across tokens intact.
    return b"".join(token.bytes for token in tokens if not token.special).decode("utf-8", errors="replace")
