"""Range headers of seed 004's downloads (RFC 9110 byte ranges): what is sent for each."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.http.routes.api_v1.files import Unsatisfiable, byte_range

sizes = st.integers(1, 10**9)
offsets = st.integers(0, 2 * 10**9)


@given(sizes, offsets, offsets)
def test_a_range_is_cut_to_the_file(size: int, first: int, length: int) -> None:
    last = first + length
    if first >= size:
        with pytest.raises(Unsatisfiable):
            byte_range(f"bytes={first}-{last}", size)
    else:
        assert byte_range(f"bytes={first}-{last}", size) == (first, min(last, size - 1))


@given(sizes, offsets)
def test_an_open_range_runs_to_the_end(size: int, first: int) -> None:
    if first < size:
        assert byte_range(f"bytes={first}-", size) == (first, size - 1)


@given(sizes, st.integers(1, 2 * 10**9))
def test_a_suffix_is_the_last_bytes(size: int, suffix: int) -> None:
    first, last = byte_range(f"bytes=-{suffix}", size) or (None, None)
    assert last == size - 1 and first == max(size - suffix, 0)


@pytest.mark.parametrize(
    "header", [None, "", "bytes=-", "bytes=5-3", "bytes=0-1,4-5", "items=0-1", "bytes=a-b", "bytes=1-2-3"]
)
def test_anything_else_sends_the_whole_file(header: str | None) -> None:
    assert byte_range(header, 100) is None


def test_an_empty_suffix_is_unsatisfiable() -> None:
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=-0", 100)
