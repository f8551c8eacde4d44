"""Token times from a segment's bounds, the decoder's timestamp guesses and the signal's energy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from whisper_api.audio.decode import decode_audio
from whisper_api.engine.token_times import SAMPLE_RATE, DecodedToken, TokenClock, signal_energy
from whisper_api.engine.types import Segment, Token
from whisper_api.engine.words import is_punctuation, words_from_segments

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures"
END_OF_TEXT = 50_257
FIRST_TIMESTAMP = 50_364


def text(
    voice_length: float = 3.0, *, timestamp_id: int = FIRST_TIMESTAMP, prob: float = 0.0
) -> DecodedToken:
    return DecodedToken(
        id=1_000,
        timestamp_id=timestamp_id,
        timestamp_prob=prob,
        timestamp_prob_sum=prob,
        voice_length=voice_length,
    )


def closing(at_seconds_in_window: float) -> DecodedToken:
    timestamp = FIRST_TIMESTAMP + round(at_seconds_in_window / 0.02)
    return DecodedToken(
        id=timestamp, timestamp_id=timestamp, timestamp_prob=1.0, timestamp_prob_sum=1.0, voice_length=0.0
    )


def audio(*parts: tuple[str, float]) -> np.ndarray:
    """Concatenated ("quiet" | "sound", seconds) parts; sound is steady noise."""
    rng = np.random.default_rng(0)
    chunks = []
    for kind, seconds in parts:
        count = round(seconds * SAMPLE_RATE)
        level = 0.3 if kind == "sound" else 0.0
        chunks.append((rng.uniform(-1, 1, count) * level).astype(np.float32))
    return np.concatenate(chunks)


def clock(samples: np.ndarray) -> TokenClock:
    return TokenClock(samples, end_of_text=END_OF_TEXT, first_timestamp=FIRST_TIMESTAMP)


@given(hnp.arrays(np.float32, st.integers(1, 300), elements=st.floats(-1, 1, width=32)))
def test_energy_is_the_mean_magnitude_over_65_samples_around_each_sample(samples: np.ndarray) -> None:
    padded = np.concatenate([np.zeros(32), np.abs(samples.astype(np.float64)), np.zeros(32)])
    expected = np.array([padded[i : i + 65].sum() / 65 for i in range(len(samples))])
    np.testing.assert_allclose(signal_energy(samples), expected, atol=1e-12)


@given(
    hnp.arrays(np.float32, st.integers(1, 300), elements=st.floats(-1, 1, width=32)),
    st.integers(0, 300),
    st.integers(0, 300),
)
def test_energy_of_a_stretch_is_that_stretch_of_the_whole_signals_energy(
    samples: np.ndarray, start: int, stop: int
) -> None:
    start, stop = sorted((min(start, len(samples)), min(stop, len(samples))))
    np.testing.assert_allclose(
        signal_energy(samples, start, stop), signal_energy(samples)[start:stop], atol=1e-12
    )


def test_a_segments_first_token_starts_where_the_sound_starts_not_where_the_segment_was_guessed_to() -> None:
    samples = audio(("quiet", 3.0), ("sound", 1.0), ("quiet", 1.0))
    times = clock(samples).times([text(), text()], start=2.9, end=4.0)
    assert times[0][0] == pytest.approx(3.0, abs=0.005)


def test_a_segments_first_token_never_starts_before_the_segment() -> None:
    samples = audio(("sound", 2.0))
    times = clock(samples).times([text(), text()], start=1.0, end=2.0)
    assert times[0][0] == 1.0


def test_token_edges_in_quiet_move_onto_the_sound_within_the_token() -> None:
    # Two words; the guessed boundary (halfway, equal voice lengths) falls in the quiet between them.
    samples = audio(("sound", 0.6), ("quiet", 0.6), ("sound", 0.8))
    (_, first_end), (second_start, _) = clock(samples).times([text(), text()], start=0.0, end=2.0)
    assert first_end == pytest.approx(0.6, abs=0.005)
    assert second_start == pytest.approx(1.2, abs=0.005)


def test_token_edges_inside_sound_stay() -> None:
    samples = audio(("sound", 2.0))
    (_, first_end), (second_start, _) = clock(samples).times([text(), text()], start=0.0, end=2.0)
    assert first_end == second_start == 1.0


def test_the_last_token_ends_where_the_sound_ends() -> None:
    samples = audio(("sound", 1.5), ("quiet", 1.0))
    times = clock(samples).times([text(), text()], start=0.0, end=2.4)
    assert times[-1][1] == pytest.approx(1.5, abs=0.005)


def test_tokens_share_a_steady_sound_in_proportion_to_their_voice_lengths() -> None:
    samples = audio(("sound", 5.0))
    times = clock(samples).times([text(1.0), text(3.0)], start=1.0, end=3.0)
    assert times == [(1.0, 1.5), (1.5, 3.0)]


def test_a_confident_timestamp_guess_fixes_a_tokens_start_counted_from_its_30_s_window() -> None:
    samples = audio(("sound", 40.0))
    # The segment runs 31.0–33.0 s and its closing timestamp says 3.0 s: its window starts at 30 s.
    guess = text(1.0, timestamp_id=FIRST_TIMESTAMP + 75, prob=0.5)  # 1.5 s into the window
    times = clock(samples).times([text(1.0), guess, text(1.0), closing(3.0)], start=31.0, end=33.0)
    assert [start for start, _ in times[:3]] == [31.0, 31.5, 32.25]


def test_an_unconfident_timestamp_guess_is_ignored() -> None:
    samples = audio(("sound", 5.0))
    guess = text(1.0, timestamp_id=FIRST_TIMESTAMP + 10, prob=0.005)
    times = clock(samples).times([text(1.0), guess, closing(2.0)], start=1.0, end=3.0)
    assert times[1][0] == 2.0


def test_control_and_timestamp_tokens_take_no_time_where_the_text_before_them_ends() -> None:
    samples = audio(("sound", 1.2), ("quiet", 1.0))
    times = clock(samples).times([text(), text(), closing(2.0)], start=0.0, end=2.0)
    assert times[2] == (times[1][1], times[1][1])


def test_a_segment_without_text_tokens_times_its_control_tokens_at_its_start() -> None:
    samples = audio(("quiet", 2.0))
    assert clock(samples).times([closing(1.0)], start=0.5, end=1.0) == [(0.5, 0.5)]


def test_no_samples_is_refused() -> None:
    with pytest.raises(ValueError):
        clock(np.zeros(0, dtype=np.float32))


segment_tokens = st.lists(
    st.builds(
        DecodedToken,
        id=st.sampled_from([5, 1_000, END_OF_TEXT + 1, FIRST_TIMESTAMP + 7]),
        timestamp_id=st.integers(FIRST_TIMESTAMP - 3, FIRST_TIMESTAMP + 1500),
        timestamp_prob=st.floats(0, 1),
        timestamp_prob_sum=st.floats(0, 1),
        voice_length=st.floats(0, 20),
    ),
    max_size=12,
)
aligned_tokens = st.lists(
    st.builds(
        DecodedToken,
        id=st.sampled_from([5, 1_000, END_OF_TEXT + 1, FIRST_TIMESTAMP + 7]),
        timestamp_id=st.just(FIRST_TIMESTAMP),
        timestamp_prob=st.just(0.0),
        timestamp_prob_sum=st.just(0.0),
        voice_length=st.just(1.0),
        dtw_time=st.floats(-1.0, 8.0),
        punctuation=st.booleans(),
    ),
    max_size=12,
)


@given(
    levels=st.lists(st.sampled_from([0.0, 0.001, 0.2, 0.9]), min_size=1, max_size=12),
    tokens=segment_tokens | aligned_tokens,
    start=st.floats(-1.0, 7.0),
    length=st.floats(-0.5, 4.0),
)
def test_times_stay_inside_the_segment_in_order(
    levels: list[float], tokens: list[DecodedToken], start: float, length: float
) -> None:
    # Up to 12 stretches of 0.5 s, each quiet or loud noise.
    rng = np.random.default_rng(1)
    samples = np.concatenate([rng.uniform(-level, level, SAMPLE_RATE // 2) for level in levels]).astype(
        np.float32
    )
    last_sample = (len(samples) - 1) / SAMPLE_RATE
    times = clock(samples).times(tokens, start=start, end=start + length)
    assert len(times) == len(tokens)
    # Times are whole samples, so bounds hold to half a sample.
    slack = 0.5 / SAMPLE_RATE
    lowest = min(max(start, 0.0), last_sample)
    highest = max(lowest, min(start + length, last_sample))
    previous_end = lowest - slack
    for token_start, token_end in times:
        assert lowest - slack <= token_start <= token_end <= highest + slack
        assert token_start >= previous_end
        previous_end = token_end


def aligned(dtw_time: float, *, punctuation: bool = False) -> DecodedToken:
    return DecodedToken(
        id=1_000,
        timestamp_id=FIRST_TIMESTAMP,
        timestamp_prob=0.0,
        timestamp_prob_sum=0.0,
        voice_length=1.0,
        dtw_time=dtw_time,
        punctuation=punctuation,
    )


def test_with_dtw_a_token_ends_where_the_alignment_moved_past_it_and_the_next_starts_there() -> None:
    samples = audio(("sound", 3.0))
    times = clock(samples).times([aligned(1.0), aligned(2.2)], start=0.0, end=3.0)
    assert times == [(0.0, 1.0), (1.0, 2.2)]


def test_with_dtw_a_word_after_a_pause_starts_where_the_sound_resumes() -> None:
    samples = audio(("sound", 1.0), ("quiet", 1.5), ("sound", 1.0))
    times = clock(samples).times([aligned(1.0), aligned(3.5)], start=0.0, end=3.5)
    assert times[1] == pytest.approx((2.5, 3.5), abs=0.02)


def test_with_dtw_two_tokens_aligned_to_one_moment_are_parted_at_the_quiet_between_them() -> None:
    samples = audio(("sound", 1.0), ("quiet", 0.2), ("sound", 0.5), ("quiet", 1.0))
    times = clock(samples).times([aligned(1.7), aligned(1.7)], start=0.0, end=2.7)
    assert times == [pytest.approx((0.0, 1.0), abs=0.02), pytest.approx((1.2, 1.7), abs=0.02)]


def test_with_dtw_punctuation_sits_at_the_end_of_the_word_it_closes() -> None:
    samples = audio(("sound", 1.0), ("quiet", 1.0), ("sound", 1.0))
    tokens = [aligned(1.0), aligned(2.6, punctuation=True), aligned(3.0)]
    times = clock(samples).times(tokens, start=0.0, end=3.0)
    assert times[1] == pytest.approx((1.0, 1.0), abs=0.02)


def test_with_dtw_a_token_without_an_alignment_time_falls_back_to_the_token_clock() -> None:
    samples = audio(("sound", 2.0))
    tokens = [aligned(1.0), DecodedToken(1_000, FIRST_TIMESTAMP, 0.0, 0.0, 1.0)]
    assert clock(samples).times(tokens, start=0.0, end=2.0) == clock(samples).times(
        [text(1.0), text(1.0)], start=0.0, end=2.0
    )


def test_dtw_times_of_real_whisper_base_on_jfk_put_every_word_within_three_tenths_of_the_reference(
    jfk_wav: Path,
) -> None:
    """whisper.cpp's DTW times for jfk.wav, recorded from the real base model, fitted to the recording:
    every word of the hand-checked reference within 0.3 s at both ends."""
    recorded = json.loads((RECORDINGS / "jfk_dtw_tokens.json").read_text())
    reference = json.loads((RECORDINGS / "jfk_reference.json").read_text())["words"]
    samples = decode_audio(jfk_wav)
    end_of_text = recorded["end_of_text"]
    decoded = [
        DecodedToken(
            id=token["id"],
            timestamp_id=recorded["first_timestamp"],
            timestamp_prob=0.0,
            timestamp_prob_sum=0.0,
            voice_length=1.0,
            dtw_time=token["t_dtw"],
            punctuation=is_punctuation(token["text"]),
        )
        for token in recorded["tokens"]
    ]
    start, end = recorded["segment"]["start"], recorded["segment"]["end"]
    times = TokenClock(samples, end_of_text=end_of_text, first_timestamp=recorded["first_timestamp"]).times(
        decoded, start, end
    )
    tokens = tuple(
        Token(
            id=token["id"],
            bytes=token["text"].encode(),
            logprob=token["logprob"],
            start=token_start,
            end=token_end,
            special=token["id"] >= end_of_text,
        )
        for token, (token_start, token_end) in zip(recorded["tokens"], times, strict=True)
    )
    text_of = "".join(token.text for token in tokens if not token.special)
    words = words_from_segments([Segment(0, start, end, text_of, tokens, 0.0)])
    # Greedy decoding leaves out the reference's (beam search's) two commas.
    assert [word.word.strip(",.") for word in words] == [word["word"].strip(",.") for word in reference]
    off = {
        f"{got.word}@{wanted['start']}": (got.start, got.end)
        for got, wanted in zip(words, reference, strict=True)
        if abs(got.start - wanted["start"]) > 0.3 or abs(got.end - wanted["end"]) > 0.3
    }
    assert off == {}
