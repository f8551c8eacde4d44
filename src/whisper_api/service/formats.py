"""The plain-text response formats (text, srt, vtt) rendered from one Transcript."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

from whisper_api.engine.types import Transcript

# Any run of dashes before ">" would read as a cue timing arrow; one dash keeps the meaning.
_ARROW = re.compile(r"-{2,}>")


def format_timestamp(seconds: float, *, decimal_marker: str, always_include_hours: bool) -> str:
    """HH:MM:SS<marker>mmm, rounded to the millisecond; negative times clamp to zero.

    Hours are not wrapped (100:00:00,000 is valid); without always_include_hours they are shown
    only when non-zero.
    """
    milliseconds = max(0, round(seconds * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    hours_part = f"{hours:02d}:" if always_include_hours or hours else ""
    return f"{hours_part}{minutes:02d}:{secs:02d}{decimal_marker}{milliseconds:03d}"


def to_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", each followed by a blank line."""
    return "".join(
        f"{number}\n{start} --> {end}\n{text}\n\n"
        for number, (start, end, text) in enumerate(_cues(transcript, decimal_marker=","), start=1)
    )


def to_vtt(transcript: Transcript) -> str:
    """WebVTT: the "WEBVTT" header, then "HH:MM:SS.mmm --> HH:MM:SS.mmm" cues separated by blank lines."""
    cues = "".join(
        f"{start} --> {end}\n{text}\n\n" for start, end, text in _cues(transcript, decimal_marker=".")
    )
    return f"WEBVTT\n\n{cues}"


def to_text(transcript: Transcript) -> str:
    return transcript.text + "\n"


def compression_ratio(text: str) -> float:
    """openai-whisper's repetition measure: UTF-8 length over zlib-compressed length (0.0 for "")."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def _cues(transcript: Transcript, *, decimal_marker: str) -> Iterator[tuple[str, str, str]]:
    for segment in transcript.segments:
        text = _cue_text(segment.text)
        if not text:
            continue
        # The timestamp is monotonic, so formatting max(start, end) can never end a cue before it starts.
        end = max(segment.start, segment.end)
        yield (
            format_timestamp(segment.start, decimal_marker=decimal_marker, always_include_hours=True),
            format_timestamp(end, decimal_marker=decimal_marker, always_include_hours=True),
            text,
        )


def _cue_text(text: str) -> str:
    # A line break inside a cue could end it early (blank line) or read as a timing line, so a
    # cue is always one line.
    return _ARROW.sub("->", " ".join(text.split()))
