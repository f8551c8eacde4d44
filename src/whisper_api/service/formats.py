"""The plain-text response formats (text, srt, vtt, tsv) rendered from one Transcript.

Subtitles are one cue per segment on one line by default; `SubtitleOptions` (openai-whisper's writer
options) wrap a segment's words into lines, group lines into cues and underline each word as it is
spoken.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from whisper_api.engine.types import Segment, Transcript, Word
from whisper_api.engine.words import words_from_segments

#: The formats made of timed cues, which `SubtitleOptions` shape.
SUBTITLE_FORMATS = ("srt", "vtt")

#: whisper's window: `seek` counts 10 ms mel frames, and windows start every 30 s.
_FRAMES_PER_SECOND = 100
_WINDOW_SECONDS = 30
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


@dataclass(frozen=True, slots=True)
class SubtitleOptions:
    """How a segment's words become cues; the defaults keep each segment one cue on one line."""

    #: Characters in a line, wrapped between words (a longer word has a line of its own).
    max_line_width: int | None = None
    #: Lines in a cue; a segment that wraps to more continues in the next cue.
    max_line_count: int | None = None
    #: Each cue once per word, from the moment it is spoken, with that word underlined (<u>...</u>).
    highlight_words: bool = False

    @property
    def needs_words(self) -> bool:
        """Whether cues are cut at words, so the transcript's word times matter."""
        return self != DEFAULT_SUBTITLES


#: One cue per segment, on one line.
DEFAULT_SUBTITLES = SubtitleOptions()


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]


def to_srt(transcript: Transcript, options: SubtitleOptions = DEFAULT_SUBTITLES) -> str:
    """SubRip: numbered cues from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", then the text, then a blank line."""
    return "".join(
        f"{number}\n{_timing(cue, ',')}\n" + "\n".join(cue.lines) + "\n\n"
        for number, cue in enumerate(cues(transcript, options), start=1)
    )


def to_vtt(
    transcript: Transcript, options: SubtitleOptions = DEFAULT_SUBTITLES, *, always_include_hours: bool = True
) -> str:
    """WebVTT: the "WEBVTT" header, then "HH:MM:SS.mmm --> HH:MM:SS.mmm" cues separated by blank lines
    (hours left out below an hour without `always_include_hours`, as openai-whisper writes them)."""
    body = "".join(
        f"{_timing(cue, '.', always_include_hours)}\n" + "\n".join(cue.lines) + "\n\n"
        for cue in cues(transcript, options)
    )
    return f"WEBVTT\n\n{body}"


def to_tsv(transcript: Transcript) -> str:
    """openai-whisper's TSV: a "start, end, text" header row, then a row per segment, times in integer
    milliseconds (no decimal separator for a locale to misread)."""
    rows = "".join(
        f"{_milliseconds(segment.start)}\t{_milliseconds(max(segment.start, segment.end))}\t{text}\n"
        for segment in transcript.segments
        if (text := _cue_text(segment.text))
    )
    return "start\tend\ttext\n" + rows


def to_text(transcript: Transcript) -> str:
    return transcript.text + "\n"


def window_seek(seconds: float) -> int:
    """openai-whisper's `seek` of the window a time falls in: its start, in 10 ms mel frames."""
    return int(seconds // _WINDOW_SECONDS) * _WINDOW_SECONDS * _FRAMES_PER_SECOND


def compression_ratio(text: str) -> float:
    """openai-whisper's repetition measure: UTF-8 length over zlib-compressed length (0.0 for "")."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def cues(transcript: Transcript, options: SubtitleOptions = DEFAULT_SUBTITLES) -> list[Cue]:
    """The cues of `transcript`, in order; blank segments have none."""
    if not options.needs_words:
        # The timestamp is monotonic, so max(start, end) can never end a cue before it starts.
        return [
            Cue(segment.start, max(segment.start, segment.end), (text,))
            for segment in transcript.segments
            if (text := _cue_text(segment.text))
        ]
    made: list[Cue] = []
    for segment, words in words_by_segment(transcript):
        for group in _cue_groups(_lines(words, options.max_line_width), options.max_line_count):
            shown = _highlighted(group) if options.highlight_words else [_plain(group)]
            for cue in shown:
                # Cues never go back in time, even where the engine's word times do.
                start = max(cue.start, made[-1].end if made else cue.start, segment.start)
                made.append(Cue(start, max(start, cue.end), cue.lines))
    return made


def words_by_segment(transcript: Transcript) -> list[tuple[Segment, tuple[Word, ...]]]:
    """Each segment that has words, with them: whisper's word times where the transcript was decoded
    with them, otherwise times shared out over the segment by each word's length."""
    timed = bool(transcript.words)
    pairs = []
    for segment in transcript.segments:
        words = _timed_words(segment) if timed else _spread_words(segment)
        if words:
            pairs.append((segment, words))
    return pairs


def _timed_words(segment: Segment) -> tuple[Word, ...]:
    words = (_clean(word) for word in words_from_segments((segment,)))
    return tuple(word for word in words if word.word)


def _spread_words(segment: Segment) -> tuple[Word, ...]:
    texts = _cue_text(segment.text).split()
    start, end = segment.start, max(segment.start, segment.end)
    total = sum(len(text) for text in texts)
    words, spoken = [], 0
    for text in texts:
        begin = start + (end - start) * spoken / total
        spoken += len(text)
        words.append(Word(text, begin, start + (end - start) * spoken / total, 1.0))
    return tuple(words)


def _clean(word: Word) -> Word:
    return Word(_cue_text(word.word), word.start, word.end, word.probability)


def _lines(words: Sequence[Word], width: int | None) -> list[list[Word]]:
    """Words wrapped into lines of at most `width` characters (one long word alone may exceed it)."""
    lines: list[list[Word]] = []
    length = 0
    for word in words:
        if lines and (width is None or length + 1 + len(word.word) <= width):
            lines[-1].append(word)
            length += 1 + len(word.word)
        else:
            lines.append([word])
            length = len(word.word)
    return lines


def _cue_groups(lines: list[list[Word]], count: int | None) -> list[list[list[Word]]]:
    step = count or len(lines)
    return [lines[index : index + step] for index in range(0, len(lines), step)]


def _plain(group: list[list[Word]]) -> Cue:
    return Cue(group[0][0].start, group[-1][-1].end, tuple(_line(line) for line in group))


def _highlighted(group: list[list[Word]]) -> list[Cue]:
    """The group once per word, each shown from its word's start until the next word's."""
    words = [word for line in group for word in line]
    shown = []
    for index, spoken in enumerate(words):
        until = words[index + 1].start if index + 1 < len(words) else group[-1][-1].end
        lines = tuple(_line(line, underlined=spoken) for line in group)
        shown.append(Cue(spoken.start, max(spoken.start, until), lines))
    return shown


def _line(words: list[Word], underlined: Word | None = None) -> str:
    text = " ".join(f"<u>{word.word}</u>" if word is underlined else word.word for word in words)
    return _ARROW.sub("->", text)


def _timing(cue: Cue, decimal_marker: str, always_include_hours: bool = True) -> str:
    start = format_timestamp(
        cue.start, decimal_marker=decimal_marker, always_include_hours=always_include_hours
    )
    end = format_timestamp(cue.end, decimal_marker=decimal_marker, always_include_hours=always_include_hours)
    return f"{start} --> {end}"


def _milliseconds(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _cue_text(text: str) -> str:
    # A line break inside a cue could end it early (blank line) or read as a timing line, so a
    # cue's text is a line of its own; lines are made only by wrapping.
    return _ARROW.sub("->", " ".join(text.split()))
