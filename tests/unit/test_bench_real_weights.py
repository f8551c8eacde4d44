"""bench.real_weights scores every engine through one normaliser and one WER; the harness starts the
service at its own defaults and reads a process's peak memory."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bench.harness import WhisperApiServer, peak_rss_bytes
from bench.real_weights import normalise, wer, word_errors

words = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüñé0123456789", min_size=1), max_size=12)


def test_the_normaliser_lowercases_and_drops_punctuation() -> None:
    assert normalise("Hello, World! ¿Qué tal?") == ["hello", "world", "qué", "tal"]


def test_the_normaliser_joins_at_apostrophes_and_splits_at_other_punctuation() -> None:
    assert normalise("Don't stop — well-known") == ["dont", "stop", "well", "known"]


def test_the_normaliser_leaves_numbers_as_written() -> None:
    assert normalise("In 1961, twenty-nine") == ["in", "1961", "twenty", "nine"]


@given(words)
def test_a_text_against_itself_differently_written_has_no_errors(text: list[str]) -> None:
    reference = " ".join(text)
    assert wer([(reference, f"  {reference.upper()}. ")]) == 0.0


@given(words, words)
def test_word_errors_are_at_least_the_length_difference_and_at_most_the_longer_length(
    reference: list[str], hypothesis: list[str]
) -> None:
    errors = word_errors(reference, hypothesis)
    assert abs(len(reference) - len(hypothesis)) <= errors <= max(len(reference), len(hypothesis))


def test_word_errors_count_a_substitution_a_deletion_and_an_insertion_once_each() -> None:
    assert (
        word_errors(["ask", "not", "what", "your", "country"], ["ask", "what", "my", "country", "can"]) == 3
    )


def test_corpus_wer_is_all_errors_over_all_reference_words() -> None:
    assert wer([("one two three four", "one two three four"), ("five six", "five")]) == 1 / 6


def test_the_service_at_its_defaults_gets_no_parallelism_flags(tmp_path: Path) -> None:
    command = WhisperApiServer(tmp_path, "base", contexts=None, threads=None).command()
    assert "--contexts" not in command and "--threads" not in command


def test_the_service_gets_the_parallelism_it_is_given(tmp_path: Path) -> None:
    command = WhisperApiServer(tmp_path, "base", contexts=2, threads=1).command()
    assert command[command.index("--contexts") + 1] == "2" and command[command.index("--threads") + 1] == "1"


def _resident_bytes() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def test_peak_rss_covers_the_memory_now_resident() -> None:
    touched = bytearray(64 * 2**20)
    touched[::4096] = b"x" * len(touched[::4096])
    assert peak_rss_bytes(os.getpid()) >= max(_resident_bytes(), 64 * 2**20)
