"""One whisper.cpp context: a loaded model and its decoding state.

A context is not thread-safe and whisper.cpp's OpenMP pool belongs to the calling thread, so each
context is created, used and freed by exactly one long-lived context thread (see `pool.py`).
"""

from __future__ import annotations

import atexit
import math
import threading
from collections.abc import Callable
from pathlib import Path

import _pywhispercpp as binding
import numpy as np
import structlog

from whisper_api.engine import capi
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
from whisper_api.engine.words import words_from_segments
from whisper_api.errors import ServerFailure

SAMPLE_RATE = binding.WHISPER_SAMPLE_RATE
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


def _route_native_logs() -> None:
    """Send whisper.cpp's logs to structlog at debug level instead of stderr."""

    def forward(level: int, text: str) -> None:
        log.debug(text.rstrip())

    binding.whisper_log_set(forward)
    # The callback must be gone before the interpreter tears down, or whisper.cpp calls into a dead Python.
    atexit.register(binding.whisper_log_set, None)


_route_native_logs()


def known_language(code: str) -> bool:
    return code in capi.language_names()


def language_name(code: str) -> str:
    return capi.language_names().get(code, code)


class WhisperContext:
    """A ggml model file loaded into whisper.cpp. Call `close()` on the thread that uses it."""

    def __init__(self, path: Path, *, use_gpu: bool = False, flash_attn: bool = False) -> None:
        params = binding.whisper_context_default_params()
        params.use_gpu = use_gpu
        params.flash_attn = flash_attn
        context = binding.whisper_init_from_file_with_params(str(path), params)
        # The binding wraps a NULL context instead of raising; using it would crash the process.
        if context is None or capi.context_pointer(context) is None:
            raise ModelLoadError(f"whisper.cpp could not load {path.name}")
        self._context: binding.whisper_context | None = context
        self.path = path
        self.multilingual = bool(binding.whisper_is_multilingual(context))
        self._eot = binding.whisper_token_eot(context)
        self._no_speech_prob = capi.no_speech_reader(context)
        tokenize = capi.tokenizer(context)
        if tokenize is None:
            binding.whisper_free(context)
            raise ModelLoadError("whisper.cpp's library was not found beside the binding; prompts need it")
        self._tokenize = tokenize
        # whisper.cpp conditions on at most half its text context, its previous-text marker included.
        self._prompt_budget = binding.whisper_n_text_ctx(context) // 2 - 1

    def close(self) -> None:
        if self._context is not None:
            binding.whisper_free(self._context)
            self._context = None

    @property
    def _ctx(self) -> binding.whisper_context:
        if self._context is None:
            raise RuntimeError("whisper context used after close()")
        return self._context

    def detect_language(self, samples: np.ndarray, threads: int) -> LanguageGuess:
        if not self.multilingual:
            return LanguageGuess("en", "english", 1.0, (("en", 1.0),))
        window = _finite(np.ascontiguousarray(samples[:_DETECTION_SAMPLES], dtype=np.float32))
        binding.whisper_pcm_to_mel(self._ctx, window, len(window), threads)
        probabilities = np.zeros(binding.whisper_lang_max_id() + 1, dtype=np.float32)
        best = binding.whisper_lang_auto_detect(self._ctx, 0, threads, probabilities)
        if best < 0:
            raise RuntimeError("whisper.cpp language detection failed")
        ranked = np.argsort(probabilities)[::-1][:_CANDIDATES]
        candidates = tuple((binding.whisper_lang_str(int(i)), float(probabilities[i])) for i in ranked)
        code = binding.whisper_lang_str(best)
        return LanguageGuess(code, language_name(code), float(probabilities[best]), candidates)

    def language(self, samples: np.ndarray, code: str | None, threads: int) -> LanguageGuess:
        """The language `code` names, or the one detected in `samples` when it is None."""
        if code is None:
            return self.detect_language(_padded(samples), threads)
        return LanguageGuess(code, language_name(code), 1.0)

    def transcribe(
        self,
        samples: np.ndarray,
        options: DecodeOptions,
        *,
        threads: int,
        on_segment: OnSegment | None = None,
        on_progress: OnProgress | None = None,
        should_abort: ShouldAbort | None = None,
    ) -> Transcript:
        duration = len(samples) / SAMPLE_RATE
        samples = _padded(_finite(np.ascontiguousarray(samples, dtype=np.float32)))
        language = self.language(samples, options.language, threads)
        params = self._params(options, language.code, threads)
        segments: list[Segment] = []
        clock = self._clock(samples) if options.word_timestamps else None
        failure: list[BaseException] = []
        # whisper.cpp calls back from inside whisper_full; an exception escaping into C++ would abort
        # the process, so callbacks record failures and ask whisper.cpp to stop instead.
        lock = threading.Lock()

        def collect_new_segments(_ctx: object, n_new: int, _user_data: object = None) -> None:
            try:
                with lock:
                    total = binding.whisper_full_n_segments(self._ctx)
                    for index in range(total - n_new, total):
                        segment = self._segment(index, duration, clock)
                        segments.append(segment)
                        if on_segment is not None:
                            on_segment(segment)
            except BaseException as error:
                failure.append(error)

        def abort_requested(_user_data: object = None) -> bool:
            if failure:
                return True
            try:
                return bool(should_abort and should_abort())
            except BaseException as error:
                failure.append(error)
                return True

        def report_progress(percent: int) -> None:
            try:
                # whisper.cpp counts the last window's full 30 s, so it passes 100 on most audio.
                on_progress(min(percent, 100))  # type: ignore[misc]  # only assigned when given
            except BaseException as error:
                failure.append(error)

        binding.assign_new_segment_callback(params, collect_new_segments)
        if on_progress is not None:
            # pywhispercpp calls a progress callback only with print_progress set (and prints nothing then).
            params.print_progress = True
            binding.assign_progress_callback(params, report_progress)
        binding.assign_abort_callback(params, abort_requested)
        status = binding.whisper_full(self._ctx, params, samples, len(samples))
        if failure:
            raise failure[0]
        if status != 0:
            if should_abort is not None and should_abort():
                raise Aborted()
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

    def _params(self, options: DecodeOptions, language: str, threads: int) -> binding.whisper_full_params:
        _check(options)
        if options.beam_size is None:
            params = binding.whisper_full_default_params(binding.WHISPER_SAMPLING_GREEDY)
            params.greedy = {"best_of": options.best_of}
        else:
            params = binding.whisper_full_default_params(binding.WHISPER_SAMPLING_BEAM_SEARCH)
            patience = -1.0 if options.patience is None else options.patience
            params.beam_search = {"beam_size": options.beam_size, "patience": patience}
        params.n_threads = threads
        params.language = language
        params.translate = options.task == "translate"
        prompt = self._prompt_tokens(options.prompt)
        # Tokens, not text: whisper.cpp would tokenize the text again, twice when it is long.
        params.prompt_tokens = prompt
        params.temperature = options.temperature
        params.temperature_inc = options.temperature_increment_on_fallback
        params.entropy_thold = options.compression_ratio_threshold
        params.logprob_thold = options.logprob_threshold
        params.no_speech_thold = options.no_speech_threshold
        # whisper.cpp keeps the decoded text on the context between calls; a request must never be
        # prompted with the previous request's words, so history always starts empty.
        params.no_context = True
        if not options.condition_on_previous_text:
            _condition_on_prompt_only(params, len(prompt))
        params.suppress_blank = options.suppress_blank
        params.suppress_nst = options.suppress_non_speech_tokens
        # The engine times tokens itself (token_times.py), but whisper.cpp's own timing pass is what
        # fills in each token's voice length, which that uses.
        params.token_timestamps = options.word_timestamps
        params.print_progress = False
        params.print_realtime = False
        params.print_timestamps = False
        params.print_special = False
        return params

    def _prompt_tokens(self, prompt: str | None) -> list[int]:
        """The tokens of `prompt` whisper conditions on: the last ones of its last bytes."""
        if not prompt:
            return []
        # A character cut in two at the start of the tail is dropped; an unpaired surrogate becomes "?".
        tail = prompt.encode("utf-8", "replace")[-_PROMPT_TAIL_BYTES:]
        return self._tokenize(tail.decode("utf-8", "ignore").encode())[-self._prompt_budget :]

    def _clock(self, samples: np.ndarray) -> TokenClock:
        return TokenClock(
            samples, end_of_text=self._eot, first_timestamp=binding.whisper_token_beg(self._ctx)
        )

    def _segment(self, index: int, duration: float, clock: TokenClock | None) -> Segment:
        """Segment `index` of the last run, its times clamped to the audio (whisper pads the last window).

        With a `clock`, token times come from it rather than from whisper.cpp (see `token_times`).
        """
        ctx = self._ctx

        def clamped(seconds: float) -> float:
            return min(max(seconds, 0.0), duration)

        # whisper.cpp counts time in centiseconds.
        start = binding.whisper_full_get_segment_t0(ctx, index) / 100
        end = binding.whisper_full_get_segment_t1(ctx, index) / 100
        decoded = [
            binding.whisper_full_get_token_data(ctx, index, position)
            for position in range(binding.whisper_full_n_tokens(ctx, index))
        ]
        if clock is None:
            times = [(data.t0 / 100, data.t1 / 100) for data in decoded]
        else:
            times = clock.times([_decoded_token(data) for data in decoded], start, end)
        tokens = [
            Token(
                id=data.id,
                bytes=binding.whisper_token_to_bytes(ctx, data.id),
                logprob=float(data.plog),
                start=clamped(token_start),
                end=clamped(token_end),
                special=data.id >= self._eot,
            )
            for data, (token_start, token_end) in zip(decoded, times, strict=True)
        ]
        no_speech = self._no_speech_prob(index) if self._no_speech_prob else 0.0
        return Segment(
            index=index,
            start=clamped(start),
            end=clamped(end),
            text=_decode_segment_text(tokens),
            tokens=tuple(tokens),
            no_speech_prob=0.0 if math.isnan(no_speech) else float(no_speech),
        )


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
    step = options.temperature_increment_on_fallback
    if step != 0 and not MIN_TEMPERATURE_INCREMENT <= step <= 1:
        raise ValueError(
            f"temperature_increment_on_fallback must be 0 or between {MIN_TEMPERATURE_INCREMENT} and 1, "
            f"got {step}"
        )


def _condition_on_prompt_only(params: binding.whisper_full_params, prompt_tokens: int) -> None:
    """Each window sees the caller's prompt (if any) but not the text decoded before it.

    whisper.cpp has one history budget for both; carrying the prompt and sizing the budget to exactly
    the prompt (plus its marker token) leaves no room for decoded text.
    """
    if not prompt_tokens:
        params.n_max_text_ctx = 0
        return
    params.carry_initial_prompt = True
    params.n_max_text_ctx = prompt_tokens + 1


def _decoded_token(data: binding.whisper_token_data) -> DecodedToken:
    return DecodedToken(
        id=data.id,
        timestamp_id=data.tid,
        timestamp_prob=float(data.pt),
        timestamp_prob_sum=float(data.ptsum),
        voice_length=float(data.vlen),
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
