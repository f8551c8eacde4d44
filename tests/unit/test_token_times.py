"""Token times from a segment's bounds, the decoder's timestamp guesses and the signal's energy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from whisper_api.engine.token_times import SAMPLE_RATE, DecodedToken, TokenClock, signal_energy

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


@given(
    levels=st.lists(st.sampled_from([0.0, 0.001, 0.2, 0.9]), min_size=1, max_size=12),
    tokens=segment_tokens,
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
